package archive

// WithWalk returns o with openat2 disabled, so that tests cover the
// component-by-component fallback of kernels without it.
func WithWalk(o Options) Options {
	o.forceWalk = true
	return o
}
