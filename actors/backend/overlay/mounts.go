package overlay

import pmount "github.com/berthrt/berth/process/mount"

// classify wraps a system call error with its error class.
func classify(err error) error { return pmount.Classify(err, "overlay") }
