package mount

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	if got := UnescapeMountinfo(`/a\040b\011c\012d\134e`); got != "/a b\tc\nd\\e" {
		t.Errorf("unescape = %q", got)
	}
}
