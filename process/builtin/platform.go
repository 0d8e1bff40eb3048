package builtin

import "runtime"

// ociArch returns the OCI architecture and variant of this process. The OCI
// image spec uses Go's GOARCH names; arm and arm64 carry a variant.
func ociArch() (arch, variant string) {
	switch runtime.GOARCH {
	case "arm":
		return "arm", "v7"
	case "arm64":
		return "arm64", "v8"
	}
	return runtime.GOARCH, ""
}

// multiarchTriple is Debian's multiarch library directory name for this
// architecture ("" when unknown).
func multiarchTriple() string {
	return map[string]string{
		"amd64":    "x86_64-linux-gnu",
		"arm64":    "aarch64-linux-gnu",
		"386":      "i386-linux-gnu",
		"arm":      "arm-linux-gnueabihf",
		"ppc64le":  "powerpc64le-linux-gnu",
		"s390x":    "s390x-linux-gnu",
		"riscv64":  "riscv64-linux-gnu",
		"mips64le": "mips64el-linux-gnuabi64",
		"loong64":  "loongarch64-linux-gnu",
	}[runtime.GOARCH]
}

// is64Bit reports whether pointers are 64 bits wide here.
func is64Bit() bool { return ^uintptr(0)>>63 == 1 }
