//go:build race

package secrets

// The race detector allocates on its own, so allocation counts are only
// asserted without it.
const raceEnabled = true
