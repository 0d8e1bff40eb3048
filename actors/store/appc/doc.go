// Package appc is the APPC image store: Mesos's appc::Store with its
// simple discovery fetcher, in plain Go (the actor shell is store.Actor).
// It turns an App Container Image (ACI: a tar holding a JSON "manifest" and
// a "rootfs" directory) and its dependencies into rootfs directories,
// bottom first, that the rootfs backends stack like Docker layers.
//
// # References
//
// Get understands (see ParseReference):
//
//   - sha512-<128 hex> — an image id: the SHA-512 of the uncompressed
//     image tar. Looked up in the store, then in the import directory.
//   - NAME[:VERSION][,LABEL=VALUE...] — an image name (an AC identifier,
//     such as example.com/hello) with labels; VERSION is the "version"
//     label. The os and arch labels default to the host's (linux, and Go's
//     GOARCH in appc's names: amd64, i386, aarch64, armv7l). An image
//     matches when it carries every label asked for with the same value; a
//     label not asked for matches any value, and an image without an os or
//     arch label is OS- or architecture-independent and matches any. Among
//     stored matches the most recently stored wins.
//
// Either may be prefixed "appc:", as on the command line.
//
// With cached true a stored match is used as it is. Otherwise, and when
// nothing matches, the ACIs dropped in the import directory are imported,
// and then the image is fetched by simple discovery, when a prefix is
// configured (--appc_simple_discovery_uri_prefix, Mesos's default
// "http://"): the URL is
//
//	{prefix}{name}-{version}-{os}-{arch}.aci
//
// with version "latest" when none is asked for. http:// is allowed to
// loopback hosts only (127.0.0.1, ::1, localhost); https:// and file://
// anywhere. Redirects obey the same rule. A 404 is errdefs.ErrNotFound, a
// refused login errdefs.ErrPermissionDenied, anything else from the server
// or the network errdefs.ErrUnavailable. As the discovery spec requires, the
// fetched manifest must carry the name and labels asked for. Signatures
// (.aci.asc) are not fetched or checked (Mesos does not either).
//
// # Dependencies
//
// An image's manifest may list dependencies, by imageName and labels and
// optionally pinned by imageID. Each is resolved like a Get with cached
// true (an imageID is looked up in the store first, else discovered by
// name and its content must hash to it: an *IDMismatchError otherwise),
// recursively and depth first. The layers are the dependencies' in manifest
// order, each preceded by its own, then the image's: the lowest first, each
// image once, at its first (lowest) place. A cycle is a *CycleError, a
// missing dependency errdefs.ErrNotFound naming the chain; both are
// reported before anything is provisioned. Execution details of
// dependencies are ignored (spec). pathWhitelist is not applied (logged),
// as Mesos does not; the dependency "size" is not checked.
//
// # Verifying and extracting
//
// An ACI (plain, gzip, zstd or bzip2; xz is refused with
// errdefs.ErrNotImplemented) is extracted whole by process/archive into a
// fresh directory under staging/, which rejects names that leave the tree
// ("rootfs/../../x"), writes through symlinks, hard links to outside and
// device nodes, and feeds every uncompressed byte to a SHA-512: that is the
// image id. Then the top level must hold exactly "manifest" (a regular
// file) and "rootfs" (a directory), the manifest must be valid
// (*ManifestError otherwise), and, for a fetch by id, the id must be the one
// asked for. Only then is the directory flushed (syncfs) and renamed to
// images/<id> in one step: a crash at any point leaves either no image or a
// complete one, and a bad image leaves nothing. An ACI has no whiteouts:
// the rootfs is stored as it is and serves every backend; a ".wh." name in
// it is read as a whiteout by the copy and aufs backends only.
//
// # The image's app
//
// The manifest's app is turned into the store's ImageConfig, which the
// docker/runtime isolator applies to every container whatever its image
// type (ADR 0010): exec is the entrypoint (a command given to the
// container replaces it), environment the environment, workingDirectory the
// working directory, and user and group the user as USER:GROUP, resolved
// in the container's /etc/passwd and /etc/group, numbers used as ids. A
// user or group that is an absolute path is the owner of that file in the
// image.
//
// # On disk
//
//	<Dir>/images/sha512-<hex>/manifest   the image manifest (Mesos's layout)
//	<Dir>/images/sha512-<hex>/rootfs/    the image's root filesystem
//	<Dir>/images/sha512-<hex>/info       storev1.StoredImage: size and source
//	                                     (written atomically; made again if
//	                                     missing)
//	<Dir>/import/*.aci                   ACI files a user drops in: imported
//	                                     at Recover and when a Get misses,
//	                                     then deleted; invalid ones renamed
//	                                     *.aci.rejected
//	<Dir>/staging/aci-<random>/          an extraction in progress
//	<Dir>/staging/gc-<random>/           an image being deleted
//	<Dir>/removed/sha512-<hex>/          an image taken out by Remove, kept
//	                                     for the containers that stack it
//	                                     until Prune
//
// An image directory placed in images/ by hand (as Mesos's store allows)
// is adopted when its name is a valid id and it holds a valid manifest and
// a rootfs; its id is trusted, not recomputed.
//
// # Recovery and pruning
//
// Recover empties staging, loads every image directory and deletes those
// that are not a complete image (bad name, missing or invalid manifest, no
// rootfs), then imports the dropped ACIs. Remove moves images to removed/
// at once. Prune deletes every image that is neither excluded (nor a
// dependency of an excluded image) nor active, and every removed image that
// is not active. Remove, Prune and Recover wait for Gets in flight.
// Concurrent fetches of one URL are one fetch (store.Flights), cancelled
// only when every caller waiting for it has given up.
package appc
