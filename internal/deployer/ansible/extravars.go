package ansible

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// tempPrefix names step directories: fastdeploy-ansible-<deployer pid>-*,
// so a later run can tell the directories of dead deployers.
const tempPrefix = "fastdeploy-ansible-"

var sweepOnce sync.Once

// TempDir creates a private (0700) directory for one ansible step. The
// first call of a process removes the directories that deployers which
// died without cleaning up (SIGKILL) left behind.
func TempDir() (string, error) {
	sweepOnce.Do(func() { SweepStale(os.TempDir()) })
	return os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
}

// SweepStale removes step directories under dir whose deployer process
// is gone. It returns how many it removed.
func SweepStale(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		if os.RemoveAll(filepath.Join(dir, e.Name())) == nil {
			removed++
		}
	}
	return removed
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ExtraVarsFile holds a step's extra variables (secrets among them) for
// ansible-playbook's --extra-vars @FILE. The file lives only until
// ansible-playbook has read it: a watch removes it as soon as it is closed
// after reading, and Close removes it on every other exit path. (Ansible
// insists on a regular file, so a pipe cannot carry them.)
type ExtraVarsFile struct {
	path    string
	watch   *os.File
	watched chan struct{}
	once    sync.Once
}

// WriteExtraVars writes vars as JSON into dir (a directory from TempDir).
func WriteExtraVars(dir string, vars map[string]any) (*ExtraVarsFile, error) {
	data, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("encode extra vars: %w", err)
	}
	f := &ExtraVarsFile{path: filepath.Join(dir, "extra-vars.json"), watched: make(chan struct{})}
	if err := os.WriteFile(f.path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write extra vars: %w", err)
	}
	f.startWatch()
	return f, nil
}

// startWatch removes the file once a reader closes it; without inotify the
// file stays until Close.
func (f *ExtraVarsFile) startWatch() {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		close(f.watched)
		return
	}
	if _, err := unix.InotifyAddWatch(fd, f.path, unix.IN_CLOSE_NOWRITE); err != nil {
		unix.Close(fd)
		close(f.watched)
		return
	}
	// A non-blocking descriptor goes through the runtime poller, so Close
	// wakes the reader below.
	f.watch = os.NewFile(uintptr(fd), "inotify")
	go func() {
		defer close(f.watched)
		buf := make([]byte, 4096)
		for {
			n, err := f.watch.Read(buf)
			if err != nil {
				return
			}
			if n >= unix.SizeofInotifyEvent {
				_ = os.Remove(f.path)
				return
			}
		}
	}()
}

// Path is the file's path, for --extra-vars @PATH.
func (f *ExtraVarsFile) Path() string { return f.path }

// Read reports (for tests) when the file has been read and removed.
func (f *ExtraVarsFile) Read() <-chan struct{} { return f.watched }

// Close removes the file if it is still there and stops the watch.
func (f *ExtraVarsFile) Close() error {
	var err error
	f.once.Do(func() {
		if rmErr := os.Remove(f.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = rmErr
		}
		if f.watch != nil {
			f.watch.Close()
		}
		<-f.watched
	})
	return err
}
