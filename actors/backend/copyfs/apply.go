package copyfs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// provision is the state of one Provision call, shared by its layers.
type provision struct {
	rootfd      int     // the rootfs directory
	mnt         mountID // the rootfs's mount: removals never leave it
	parallelism int
	meta        metaSetter
	noNoatime   atomic.Bool // the kernel refused O_NOATIME (EPERM: not our file)
	bufs        sync.Pool   // getdents buffers
}

// getBuf returns a getdents buffer; putBuf gives it back.
func (p *provision) getBuf() []byte {
	if b, ok := p.bufs.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, direntBufSize)
}

func (p *provision) putBuf(b []byte) { p.bufs.Put(&b) }

// inodeKey identifies a source inode, to find the other names of a
// multiply-linked file.
type inodeKey struct{ dev, ino uint64 }

// laterLink is a second (or later) name of a multiply-linked inode, linked
// to the first name's copy once the whole layer is walked.
type laterLink struct {
	dir   *dirTask // the directory the name goes in (kept open until then)
	name  string
	rel   string
	first string // rootfs-relative path of the first name
}

// dirTask is one layer directory to apply onto its rootfs counterpart.
//
// A task does every namespace operation of its own directory (whiteouts,
// mkdir, create, symlink, mknod, removal), in order, and spawns one task per
// subdirectory and one job per file content. Its metadata (owner, mode,
// xattrs, times) is applied when it and all its subdirectory tasks are done
// ("finalize"), so its mtime is the layer's and not that of the copy.
type dirTask struct {
	sfd, dfd int
	own      bool // the task closes sfd and dfd (not the layer and rootfs roots)
	rel      string
	st       unix.Stat_t
	merged   bool // the rootfs directory existed before this layer
	parent   *dirTask
	pending  atomic.Int32 // 1 while the task runs, +1 per unfinished subdirectory
	hasLater bool         // a later hard link goes in here: finalize after the links
}

// layerApply is the state of applying one layer.
type layerApply struct {
	*provision
	ctx   context.Context // cancelled as soon as any task fails
	g     *errgroup.Group
	layer int

	mu       sync.Mutex
	links    map[inodeKey]string   // first rootfs name of each multiply-linked source inode
	later    []laterLink           // the other names
	open     map[*dirTask]struct{} // tasks whose descriptors are open
	deferred []*dirTask            // finalized once the later links exist
}

// applyLayer copies the layer open at layerfd onto the rootfs. It returns
// when every task and job is done, so the next layer starts on a complete
// tree.
//
// Directories are applied in parallel (bounded by the errgroup limit; a
// task that finds no free slot runs the work itself): on disk filesystems
// creating inodes is what costs, and creations in one directory serialize
// on its lock, so only distinct directories scale.
func (p *provision) applyLayer(ctx context.Context, i, layerfd int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.parallelism)
	l := &layerApply{
		provision: p, ctx: gctx, g: g, layer: i,
		links: map[inodeKey]string{}, open: map[*dirTask]struct{}{},
	}
	defer l.closeAll()
	root := &dirTask{sfd: layerfd, dfd: p.rootfd, merged: i > 0}
	if err := unix.Fstat(layerfd, &root.st); err != nil {
		return l.fail("", "fstat", err)
	}
	root.pending.Store(1)
	l.track(root)
	err := l.run(root)
	if err != nil {
		cancel() // stop the other tasks early
	}
	werr := g.Wait()
	if werr != nil && (err == nil || isContextErr(err)) {
		return werr // a task failed; this one only saw the cancellation
	}
	if err != nil {
		return err
	}
	l.ctx = ctx // Wait cancelled gctx
	return l.finishLinks()
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fail wraps err with the layer, the rootfs-relative path and the operation.
func (l *layerApply) fail(rel, op string, err error) error {
	if rel == "" {
		rel = "."
	}
	if isContextErr(err) {
		return fmt.Errorf("copy backend: layer %d: %w", l.layer, err)
	}
	return fmt.Errorf("copy backend: layer %d: %s: %s: %w", l.layer, rel, op, classify(err))
}

// classify adds an error class to the errnos that have one.
func classify(err error) error {
	switch {
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT), errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		return fmt.Errorf("%w: %w", errdefs.ErrResourceExhausted, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %w", errdefs.ErrPermissionDenied, err)
	}
	return err
}

// spawn runs f on a free worker, or right here when there is none.
func (l *layerApply) spawn(f func() error) error {
	if l.g.TryGo(f) {
		return nil
	}
	return f()
}

// track records t as holding open descriptors.
func (l *layerApply) track(t *dirTask) {
	l.mu.Lock()
	l.open[t] = struct{}{}
	l.mu.Unlock()
}

// release closes t's descriptors.
func (l *layerApply) release(t *dirTask) {
	l.mu.Lock()
	delete(l.open, t)
	l.mu.Unlock()
	if t.own {
		unix.Close(t.sfd)
		unix.Close(t.dfd)
	}
}

// closeAll closes the descriptors of the tasks a failure left unfinished.
func (l *layerApply) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t := range l.open {
		if t.own {
			unix.Close(t.sfd)
			unix.Close(t.dfd)
		}
	}
	clear(l.open)
}

// run applies the directory of t: whiteouts first, so that they only ever
// hide lower layers (an opaque marker empties the rootfs directory, each
// ".wh.NAME" removes NAME from it), then the entries.
//
// Whiteouts act on t.dfd itself, reached by O_NOFOLLOW opens from the
// rootfs root, so a lower layer's symlink can never redirect them: a layer
// directory "a/b" whose rootfs counterpart was a symlink has already
// replaced it with a real, empty directory.
func (l *layerApply) run(t *dirTask) error {
	buf := l.getBuf()
	defer l.putBuf(buf)
	ents, err := readDir(t.sfd, buf)
	if err != nil {
		return l.fail(t.rel, "read layer directory", err)
	}
	// readDir is done with buf: the remover may reuse it.
	rm := &remover{ctx: l.ctx, mnt: l.mnt, buf: buf}
	if t.merged {
		if err := l.whiteouts(t, ents, rm); err != nil {
			return err
		}
	}
	for _, e := range ents {
		if strings.HasPrefix(e.name, archive.WhiteoutPrefix) {
			if err := checkWhiteout(e.name); err != nil {
				return l.fail(joinRel(t.rel, e.name), "whiteout", err)
			}
			continue // never copied
		}
		if err := l.ctx.Err(); err != nil {
			return l.fail(t.rel, "", err)
		}
		if err := l.entry(t, e, rm); err != nil {
			return err
		}
	}
	return l.done(t)
}

// done drops one reference to t; the last one finalizes it and passes the
// reference it held on its parent up the tree.
func (l *layerApply) done(t *dirTask) error {
	for ; t != nil; t = t.parent {
		if t.pending.Add(-1) != 0 {
			return nil
		}
		if err := l.finalize(t); err != nil {
			return err
		}
	}
	return nil
}

// finalize applies a finished directory's metadata and closes it, unless a
// later hard link still has to go in (then finishLinks does both).
func (l *layerApply) finalize(t *dirTask) error {
	if t.hasLater {
		l.mu.Lock()
		l.deferred = append(l.deferred, t)
		l.mu.Unlock()
		return nil
	}
	defer l.release(t)
	if err := l.meta.fdMeta(t.sfd, t.dfd, &t.st); err != nil {
		return l.fail(t.rel, "metadata", err)
	}
	return nil
}

// finishLinks creates the later names of multiply-linked inodes, then
// finalizes the directories that were waiting for them.
func (l *layerApply) finishLinks() error {
	rm := &remover{ctx: l.ctx, mnt: l.mnt, buf: l.getBuf()}
	defer l.putBuf(rm.buf)
	for _, ln := range l.later {
		if err := l.ctx.Err(); err != nil {
			return l.fail(ln.rel, "", err)
		}
		if err := l.link(ln, rm); err != nil {
			return err
		}
	}
	for _, t := range l.deferred {
		t.hasLater = false
		if err := l.finalize(t); err != nil {
			return err
		}
	}
	return nil
}

// whiteouts applies the opaque marker and the whiteouts among ents to the
// rootfs directory of t.
//
// Sequences: opaque: remover.clear(dfd) (getdents(dfd) then unlinkat or a
// recursive removeDir per entry); ".wh.NAME": unlinkat(dfd, NAME, 0), and
// on EISDIR the recursive removeDir(dfd, NAME). ENOENT is not an error.
func (l *layerApply) whiteouts(t *dirTask, ents []dirent, rm *remover) error {
	for _, e := range ents {
		if e.name == archive.WhiteoutOpaque {
			if err := rm.clear(t.dfd, t.rel); err != nil {
				return l.fail(t.rel, "opaque whiteout", err)
			}
			break
		}
	}
	for _, e := range ents {
		target, ok := whiteoutTarget(e.name)
		if !ok {
			continue
		}
		if err := rm.removeEntry(t.dfd, target, joinRel(t.rel, target)); err != nil {
			return l.fail(joinRel(t.rel, e.name), "whiteout", err)
		}
	}
	return nil
}

// whiteoutTarget returns the name a ".wh.NAME" entry deletes. The opaque
// marker, AUFS's own ".wh..wh.*" metadata (hard-link and orphan dirs) and
// malformed names (see checkWhiteout) delete nothing.
func whiteoutTarget(name string) (string, bool) {
	if !strings.HasPrefix(name, archive.WhiteoutPrefix) || checkWhiteout(name) != nil {
		return "", false
	}
	if strings.HasPrefix(name, archive.WhiteoutPrefix+archive.WhiteoutPrefix) {
		return "", false
	}
	return name[len(archive.WhiteoutPrefix):], true
}

// checkWhiteout rejects whiteouts that name no sibling: ".wh." (the parent
// itself) and ".wh.." / ".wh..." ("." and ".."). Our extractor never writes
// them; a layer that has them was not written by it.
func checkWhiteout(name string) error {
	switch name[len(archive.WhiteoutPrefix):] {
	case "", ".", "..":
		return fmt.Errorf("malformed whiteout %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// entry applies one layer entry. Directories and regular files are opened
// straight away (the d_type says what they are, and fstat on the open
// descriptor confirms it); anything else, or an unknown d_type, is stat'ed.
func (l *layerApply) entry(t *dirTask, e dirent, rm *remover) error {
	switch e.typ {
	case unix.DT_DIR:
		return l.subdir(t, e.name, rm)
	case unix.DT_REG:
		return l.file(t, e.name, rm)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(t.sfd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return l.fail(joinRel(t.rel, e.name), "stat layer entry", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return l.subdir(t, e.name, rm)
	case unix.S_IFREG:
		return l.file(t, e.name, rm)
	}
	return l.node(t, e.name, &st, rm)
}

// openSrc opens name under sdir with flags, adding O_NOATIME while the
// kernel allows it (the owner or CAP_FOWNER): reading a layer then does not
// dirty its inodes with atime updates.
func (l *layerApply) openSrc(sdir int, name string, flags int) (int, error) {
	noatime := unix.O_NOATIME
	if l.noNoatime.Load() {
		noatime = 0
	}
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Openat(sdir, name, flags|noatime, 0)
		return err
	})
	if errors.Is(err, unix.EPERM) && noatime != 0 {
		l.noNoatime.Store(true)
		return l.openSrc(sdir, name, flags)
	}
	return fd, err
}

// subdir applies a layer directory: the rootfs directory is created (or
// kept, when a lower layer made one; or replaces whatever non-directory was
// there) and opened, and a task is spawned for it.
//
// Sequence: sfd = openat(sdir, name, O_DIRECTORY|O_NOFOLLOW|O_NOATIME);
// fstat(sfd); mkdirat(ddir, name, 0700) (EEXIST: fstatat(NOFOLLOW); a
// directory is merged, anything else removed and mkdirat again);
// dfd = openat(ddir, name, O_DIRECTORY|O_NOFOLLOW).
func (l *layerApply) subdir(t *dirTask, name string, rm *remover) error {
	crel := joinRel(t.rel, name)
	sfd, err := l.openSrc(t.sfd, name, dirFlags)
	if err != nil {
		return l.fail(crel, "open layer directory", err)
	}
	child := &dirTask{sfd: sfd, own: true, rel: crel, parent: t}
	if err := unix.Fstat(sfd, &child.st); err != nil {
		unix.Close(sfd)
		return l.fail(crel, "fstat layer directory", err)
	}
	child.dfd, child.merged, err = mkdir(t.dfd, name, crel, rm)
	if err != nil {
		unix.Close(sfd)
		return l.fail(crel, "mkdir", err)
	}
	child.pending.Store(1)
	l.track(child)
	t.pending.Add(1)
	return l.spawn(func() error { return l.run(child) })
}

// mkdir makes sure name under ddir is a real directory and opens it. merged
// reports that it already was one.
func mkdir(ddir int, name, rel string, rm *remover) (fd int, merged bool, err error) {
	err = retryEINTR(func() error { return unix.Mkdirat(ddir, name, 0o700) })
	if errors.Is(err, unix.EACCES) && grantWrite(ddir) {
		err = retryEINTR(func() error { return unix.Mkdirat(ddir, name, 0o700) })
	}
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(ddir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, false, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			merged = true
		} else {
			if err = rm.removeEntry(ddir, name, rel); err != nil {
				return -1, false, err
			}
			err = retryEINTR(func() error { return unix.Mkdirat(ddir, name, 0o700) })
		}
	}
	if err != nil {
		return -1, false, err
	}
	err = retryEINTR(func() (err error) {
		fd, err = unix.Openat(ddir, name, dirFlags, 0)
		return err
	})
	return fd, merged, err
}

// create runs mk, which creates name under ddir and fails with EEXIST when
// the name is taken. A taken name (a lower layer's entry, possibly a
// symlink) is removed without being followed, and mk runs once more.
// Without root, a directory a lower layer made read-only is made writable
// for us first (its final mode is applied when its task finalizes).
func create(ddir int, name, rel string, rm *remover, mk func() error) error {
	err := retryEINTR(mk)
	if errors.Is(err, unix.EACCES) && grantWrite(ddir) {
		err = retryEINTR(mk) // a lower layer's read-only directory, without root
	}
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := rm.removeEntry(ddir, name, rel); err != nil {
		return err
	}
	return retryEINTR(mk)
}

// file applies a regular file: it is created here, and its contents and
// metadata are copied through the two descriptors by a job.
//
// Sequence: sfd = openat(sdir, name, O_RDONLY|O_NOFOLLOW|O_NONBLOCK|
// O_NOATIME); fstat(sfd); dfd = openat(ddir, name, O_WRONLY|O_CREAT|O_EXCL|
// O_NOFOLLOW, 0600) (EEXIST: remove the old entry, retry); then (job)
// copyData(sfd, dfd); fdMeta(sfd, dfd); close both.
func (l *layerApply) file(t *dirTask, name string, rm *remover) error {
	crel := joinRel(t.rel, name)
	sfd, err := l.openSrc(t.sfd, name, srcFileFlags)
	if err != nil {
		return l.fail(crel, "open layer file", err)
	}
	st := new(unix.Stat_t)
	if err := unix.Fstat(sfd, st); err != nil {
		unix.Close(sfd)
		return l.fail(crel, "fstat layer file", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(sfd)
		return l.fail(crel, "open layer file", fmt.Errorf("changed type during the copy: %w", errdefs.ErrFailedPrecondition))
	}
	if l.laterName(t, name, crel, st) {
		unix.Close(sfd)
		return nil
	}
	var dfd int
	err = create(t.dfd, name, crel, rm, func() (err error) {
		dfd, err = unix.Openat(t.dfd, name, dstFileFlags, 0o600)
		return err
	})
	if err != nil {
		unix.Close(sfd)
		return l.fail(crel, "create", err)
	}
	job := func() error {
		defer unix.Close(sfd)
		defer unix.Close(dfd)
		if err := copyData(l.ctx, sfd, dfd, st.Size, st.Blocks); err != nil {
			return l.fail(crel, "copy", err)
		}
		if err := l.meta.fdMeta(sfd, dfd, st); err != nil {
			return l.fail(crel, "metadata", err)
		}
		return nil
	}
	if st.Size == 0 {
		return job()
	}
	return l.spawn(job)
}

// laterName handles the names of a multiply-linked source inode within this
// layer: the first name seen is recorded (false: copy it); each later one is
// queued for finishLinks (true), which links it to the first name's copy
// once every copy exists.
func (l *layerApply) laterName(t *dirTask, name, crel string, st *unix.Stat_t) bool {
	if st.Nlink < 2 {
		return false
	}
	key := inodeKey{dev: uint64(st.Dev), ino: uint64(st.Ino)} //nolint:unconvert // narrower on some GOARCHes
	l.mu.Lock()
	defer l.mu.Unlock()
	first, ok := l.links[key]
	if !ok {
		l.links[key] = crel
		return false
	}
	l.later = append(l.later, laterLink{dir: t, name: name, rel: crel, first: first})
	t.hasLater = true
	return true
}

// link creates a later name of a multiply-linked inode.
//
// Sequence: pfd = openat2(rootfd, dir(first), O_PATH|O_DIRECTORY,
// RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS);
// linkat(pfd, base(first), dfd, name, 0) (no AT_SYMLINK_FOLLOW: a symlink
// is linked, never its target); EEXIST: remove the old entry, retry.
func (l *layerApply) link(ln laterLink, rm *remover) error {
	pdir, base := path.Split(ln.first)
	pfd, err := openDirInRoot(l.rootfd, strings.TrimSuffix(pdir, "/"))
	if err != nil {
		return l.fail(ln.rel, "open hard link parent "+pdir, err)
	}
	defer unix.Close(pfd)
	ddir := ln.dir.dfd
	err = create(ddir, ln.name, ln.rel, rm, func() error { return unix.Linkat(pfd, base, ddir, ln.name, 0) })
	if err != nil {
		return l.fail(ln.rel, "link to "+ln.first, err)
	}
	return nil
}

// node applies a symlink, FIFO, socket or device node, then its metadata.
//
// Sequences: symlink: readlinkat(sdir, name) → symlinkat(target, ddir, name),
// the target verbatim (it is only ever resolved inside the container);
// others: mknodat(ddir, name, type|0600, rdev). EEXIST: remove the old
// entry, retry. Then nodeMeta.
func (l *layerApply) node(t *dirTask, name string, st *unix.Stat_t, rm *remover) error {
	crel := joinRel(t.rel, name)
	if l.laterName(t, name, crel, st) {
		return nil
	}
	var mk func() error
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := readlinkAt(t.sfd, name, st.Size)
		if err != nil {
			return l.fail(crel, "readlink", err)
		}
		mk = func() error { return unix.Symlinkat(target, t.dfd, name) }
	} else {
		mode := st.Mode&unix.S_IFMT | 0o600
		mk = func() error { return unix.Mknodat(t.dfd, name, mode, int(st.Rdev)) }
	}
	if err := create(t.dfd, name, crel, rm, mk); err != nil {
		return l.fail(crel, "create", err)
	}
	if err := l.meta.nodeMeta(t.sfd, t.dfd, name, st); err != nil {
		return l.fail(crel, "metadata", err)
	}
	return nil
}

// readlinkAt reads the target of the symlink name under dirfd; size is its
// lstat size, a hint (0 on some filesystems).
func readlinkAt(dirfd int, name string, size int64) (string, error) {
	n := max(int(size)+1, 256)
	for {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if m < len(buf) {
			return string(buf[:m]), nil
		}
		n *= 2 // truncated: the link grew, or size was 0
	}
}
