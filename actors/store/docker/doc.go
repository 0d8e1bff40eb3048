// Package docker is the docker image store: Mesos's docker::Store with its
// MetadataManager, in plain Go (the actor shell is store.Actor). It turns a
// Docker or OCI image into extracted layer directories, bottom first, kept
// in a content-addressed cache, and remembers the images it holds.
//
// # References
//
// Get understands:
//
//   - docker-archive:PATH[:NAME[:TAG]] — a `docker save` tarball, read in
//     place (one indexing pass, then every layer is a section of the file,
//     extracted in parallel). Through manifest.json when present: that
//     covers Docker 1.10 to 24 ("<id>/layer.tar", symlinked when repeated)
//     and Docker 25+ ("blobs/sha256/<hex>") alike, and skopeo's archives;
//     layers may be plain, gzip or zstd tars. Without manifest.json an
//     archive holding index.json is read as an OCI layout. Archives of
//     Docker before 1.10 (no manifest.json) and compressed archives
//     (docker save | gzip) are refused. NAME picks an image of an archive
//     holding several. The image is stored under NAME, else its first
//     RepoTag, else the source string itself.
//   - oci:PATH[:TAG] — an OCI image layout directory; TAG matches the
//     annotation org.opencontainers.image.ref.name; without TAG the layout
//     must list exactly one image. Image indexes (multi-arch) are followed
//     to linux/runtime.GOARCH. Stored under the containerd name annotation
//     or a ref name that is a full reference, else the source string.
//   - Options.BuiltinReference — the built-in image: Options.Builtin builds
//     its layout in <Dir>/builtin, which is then imported like oci:.
//   - NAME[:TAG|@DIGEST] — normalised as Docker does (busybox is
//     docker.io/library/busybox:latest) and looked up in the store. When it
//     is not there (or cached is false) and Options.TarballDir is set, it is
//     imported from the first of TarballDir/<NAME as typed>.tar,
//     <familiar NAME:TAG>.tar, <canonical NAME:TAG>.tar that exists
//     (Mesos's naming: "busybox:latest.tar"). Otherwise an image already
//     stored is re-read from its archive or layout when that still exists,
//     or, when Options.Registry is set, pulled from its registry (see
//     Registry pulls), or served as stored. Anything else is
//     errdefs.ErrNotFound.
//
// # Registry pulls
//
// With Options.Registry set, a NAME[:TAG|@DIGEST] that is not stored (or
// asked for with cached false) is pulled with go-containerregistry from the
// registry the name gives; names on docker.io (no registry host) from
// Options.Registry. Loopback registries are spoken to in plain HTTP. A
// manifest list or OCI index is followed to linux/runtime.GOARCH. The
// manifest is fetched through the registry API, its digest checked when
// the reference or an index gives one; config and layers through the blob
// endpoint, each verified against its descriptor (sha256 and size) by the
// same code that imports OCI layouts, and the layers go through the same
// cache (a layer cached by diff id is not downloaded). The image is stored
// under the canonical name asked for, with the manifest digest and Source
// "registry" (many images share that source). An unknown repository, tag
// or digest is errdefs.ErrNotFound naming the reference and the registry;
// refused credentials errdefs.ErrPermissionDenied; an unreachable or
// failing registry errdefs.ErrUnavailable.
//
// # Registry logins
//
// Options.DockerConfig is a Docker config.json; its logins are looked up
// for the registry host the way Docker does, first match wins:
//
//  1. credHelpers[host]: the credential helper named for the registry;
//  2. credsStore: the credential helper for every registry;
//  3. auths[host]: {"auth": base64("user:password")}, or "username" and
//     "password", or "identitytoken";
//  4. else anonymous.
//
// A credential helper is the program docker-credential-<name>, found in
// Options.CredentialHelperPath (default $PATH), run as `<program> get`
// with the server URL on stdin (the registry's HOST[:PORT];
// https://index.docker.io/v1/ for Docker Hub), once per pull, for at most
// Options.CredentialHelperTimeout (30 s). It prints {"ServerURL",
// "Username", "Secret"}; Username "<token>" makes Secret an identity
// (OAuth2 refresh) token. Its answer "credentials not found" (or an empty
// login) means anonymous. A helper that is not installed is
// errdefs.ErrFailedPrecondition, one that fails or prints something else
// errdefs.ErrUnavailable, one that does not answer in time
// errdefs.ErrDeadlineExceeded; each names the helper and the registry.
// Helper names with a slash are refused when the store is made.
//
// The login is used as the registry asks: HTTP basic auth, or Docker's
// token authentication (a Bearer challenge: the login, or the identity
// token through OAuth2, is exchanged at the realm for a token for the
// repository's pull scope). go-containerregistry refuses a realm given as
// a loopback or private IP address other than the registry's own
// HOST:PORT (its guard against request forgery; host names pass); such a
// pull fails with errdefs.ErrUnavailable saying so.
//
// Get with cached=true returns a stored image whose layers are all in the
// cache without reading its source; cached=false reads the source again
// (layers already cached are not extracted again).
//
// Errors: a missing archive, layout or tarball is errdefs.ErrNotFound naming
// the path. A malformed index, manifest or config, a missing blob, a blob
// whose sha256 is not its digest, a layer whose diff id is not the config's,
// or an unsupported media type is errdefs.ErrInvalidArgument naming what is
// wrong. Every blob read is verified against its digest where the source
// gives one (OCI blobs, "blobs/sha256/<hex>" and "<hex>.json" members);
// every layer against its diff id.
//
// # Progress
//
// A Get whose context carries a sink (store.WithProgress) is told, for
// every distinct layer of every import it causes, where the layer stands,
// as store.Progress events (LayerID the diff id, Current the blob bytes
// read, Total the blob's size from the manifest or the source, Reference
// the name the image is stored under):
//
//   - waiting, for every layer, when the import starts (at most four
//     layers are extracted at once);
//   - cached, when the layer is already in the cache (Current = Total);
//   - downloading, for a registry blob: at 0 when the blob opens, then
//     the bytes read at most every Options.ProgressInterval (100 ms), and
//     at the end of the blob. The blob is unpacked as it arrives, so these
//     bytes are also unpacked;
//   - extracting: for a local archive or layout instead of downloading
//     (same byte counts); after a download, once, while the layer is
//     verified, flushed and moved into the cache;
//   - done, when the layer is in the cache (Current = Total).
//
// Current never decreases for a layer. A failed import reports no final
// phase: its error is the answer. The sink is called from the import's
// goroutines, one layer's events in order, and must return quickly. A Get
// that joins an import in flight (coalesced) is first told the latest
// event of every layer reported so far, then everything that follows; the
// same holds for an extraction of a layer shared by two images. A Get
// answered from the cache (cached=true) reports nothing.
//
// # On disk
//
//	<Dir>/storedImages                   the image metadata (storev1.StoredImages),
//	                                     rewritten atomically after every change
//	<Dir>/layers/sha256:<hex>/rootfs     an extracted layer, named by its diff id,
//	                                     whiteouts in AUFS form (".wh." files)
//	<Dir>/layers/sha256:<hex>/rootfs.overlay  the same layer in overlayfs form
//	                                     (0/0 character devices, trusted.overlay.opaque)
//	<Dir>/layers/sha256:<hex>/size       its unpacked size in bytes
//	<Dir>/staging/layer-<random>/        an extraction in progress
//	<Dir>/staging/gc-<random>/           a layer being deleted by Prune
//	<Dir>/builtin/                       the built-in image's OCI layout
//
// The overlay backend reads layers in overlayfs's whiteout form, every other
// backend in AUFS form (see whiteoutFormat); a layer is extracted in a form
// the first time a backend that needs it asks, and the two forms live side
// by side. Recover keeps an image whose layers are complete in either form.
//
// A layer is extracted once: into <Dir>/staging/layer-<random>/rootfs, then
// checked (blob digest, diff id), flushed (syncfs) and renamed to
// layers/<id> in one step. If another extraction of the same layer won the
// race, ours is discarded. A failed extraction leaves nothing behind in
// staging or layers. The layers of one image are extracted in parallel, four
// at a time; concurrent Gets of one image are coalesced into one import, and
// concurrent imports needing one layer into one extraction. An import is
// cancelled only when every caller waiting for it has given up.
//
// Extraction chowns entries to their owners when the store runs as root
// and keeps the caller's ownership otherwise (rootless use).
//
// # Recovery and pruning
//
// Recover loads the metadata (a corrupt file is logged, moved aside as
// storedImages.corrupt-<unix time>, and the store starts empty), drops the
// images with a missing layer directory and empties staging. Prune forgets
// every image not excluded, then deletes (renamed into staging first, so
// the removal is atomic) every layer that no remaining image uses and that
// is not active. Prune and Recover wait for imports in flight.
package docker
