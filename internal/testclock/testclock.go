// Package testclock is the one fixed clock that tests pair with fixed data,
// and the check that keeps it from meeting live data.
//
// A test that pins its clock and then reads something live (a real tool's
// output, a running binary, the wall clock) passes on the day it is written
// and fails on some later day: that is how make test went red on
// 2026-11-28. So:
//   - fixed data goes with Now(), the fixed clock;
//   - live data goes with the real clock, or with a clock derived from the
//     data itself, marked by DerivedFrom;
//   - FASTDEPLOY_TEST_CLOCK_SHIFT (a Go duration or whole days, "400d")
//     moves the fixed clock: make test runs the packages that use it once
//     more with the clock 400 days ahead, so a test that silently depends on
//     the fixed clock being "today" fails on the day it is written;
//   - guard_test.go reads every test in the repository and refuses a test
//     that reaches both the fixed clock and a live source without deriving
//     its clock from the data.
package testclock

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvShift names the environment variable that moves the fixed clock.
const EnvShift = "FASTDEPLOY_TEST_CLOCK_SHIFT"

// base is the fixed clock's time when unshifted: the day the fixtures in
// testdata/ were recorded.
var base = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// Now is the fixed test clock, moved by FASTDEPLOY_TEST_CLOCK_SHIFT.
func Now() time.Time { return base.Add(Shift()) }

// Shift is the offset FASTDEPLOY_TEST_CLOCK_SHIFT asks for (zero when it is
// unset). A malformed value panics: a guard that silently does nothing is
// worse than none.
func Shift() time.Duration {
	d, err := ParseShift(os.Getenv(EnvShift))
	if err != nil {
		panic(err)
	}
	return d
}

// ParseShift reads a shift: a Go duration ("-36h") or whole days ("400d").
func ParseShift(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: want a duration such as 400d or -36h", EnvShift, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a duration such as 400d or -36h", EnvShift, s)
	}
	return d, nil
}

// DerivedFrom returns a clock time taken from live data (for example the
// first timestamp of a real tool's output). It returns t unchanged; calling
// it says, to the reader and to the guard, that the test's clock comes from
// its data rather than from the fixed clock.
func DerivedFrom(t time.Time) time.Time { return t }
