package deploy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// TestParseSize: MB is 10^6 bytes and MiB 2^20, as SI and IEC 80000-13 say; a bare K, M
// or G is refused, since it is read both ways, and every refusal quotes the forms.
func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"100000", 100000}, {"0", 0}, {"1500B", 1500},
		{"2MB", 2_000_000}, {"2mb", 2_000_000}, {"2MiB", 2 << 20}, {"2mib", 2 << 20},
		{"64kB", 64_000}, {"64KB", 64_000}, {"64KiB", 64 << 10},
		{"1GB", 1_000_000_000}, {"1GiB", 1 << 30}, {" 3 MiB ", 3 << 20},
	} {
		got, err := deploy.ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if err == nil {
			back, err := deploy.ParseSize(deploy.FormatSize(got))
			if err != nil || back != got {
				t.Errorf("FormatSize(%d) = %q, which reads back as %d, %v", got, deploy.FormatSize(got), back, err)
			}
		}
	}
	for _, bad := range []string{"abc", "2M", "64K", "1G", "-1", "1.5MB", "", "MB", "9999999999GiB"} {
		_, err := deploy.ParseSize(bad)
		if !errors.Is(err, deploy.ErrSize) || !strings.Contains(err.Error(), deploy.SizeForms) {
			t.Errorf("ParseSize(%q): %v; want ErrSize with the forms", bad, err)
		}
	}
	for n, want := range map[int64]string{2 << 20: "2MiB", 2_000_000: "2MB", 64 << 10: "64KiB", 1500: "1500B", 1_000_000_000: "1GB", 0: "0B"} {
		if got := deploy.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
