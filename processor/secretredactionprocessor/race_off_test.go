//go:build !race

package secretredactionprocessor

const raceEnabled = false
