package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Spool keeps requests that could not be delivered: one directory, one
// NDJSON file per deployment, each append fsynced. Files are locked with
// flock so a run and a concurrent `fastdeploy flush` never interleave.
// Requests the receiver refused for good go to rejected/ beside it, kept
// for inspection, never resent automatically.
type Spool struct {
	dir string
}

// NewSpool returns a spool in dir, creating it (mode 0700: spooled
// events may hold secrets of the deployment context).
func NewSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	return &Spool{dir: dir}, nil
}

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

const spoolExt = ".ndjson"

// fileName maps a deployment id to a safe, unique file name.
func fileName(deployment string) string {
	var b strings.Builder
	for _, r := range deployment {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	sum := sha256.Sum256([]byte(deployment))
	return strings.TrimLeft(b.String(), ".") + "-" + hex.EncodeToString(sum[:4]) + spoolExt
}

// Path returns the spool file of a deployment.
func (s *Spool) Path(deployment string) string {
	return filepath.Join(s.dir, fileName(deployment))
}

// Append writes reqs to their deployment's spool file and fsyncs it.
func (s *Spool) Append(reqs ...*Request) error {
	byFile := map[string][]*Request{}
	var order []string
	for _, r := range reqs {
		p := s.Path(r.Deployment)
		if _, ok := byFile[p]; !ok {
			order = append(order, p)
		}
		byFile[p] = append(byFile[p], r)
	}
	for _, p := range order {
		if err := appendFile(p, byFile[p]); err != nil {
			return err
		}
	}
	return nil
}

// Reject keeps a refused request under rejected/.
func (s *Spool) Reject(req *Request) error {
	dir := filepath.Join(s.dir, "rejected")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create rejected directory: %w", err)
	}
	return appendFile(filepath.Join(dir, fileName(req.Deployment)), []*Request{req})
}

func appendFile(path string, reqs []*Request) error {
	f, err := lockFile(path, true)
	if err != nil {
		return err
	}
	defer unlock(f)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode spool record: %w", err)
		}
	}
	end, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("spool %s: %w", path, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("spool %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool %s: fsync: %w", path, err)
	}
	if end == 0 {
		syncDir(filepath.Dir(path)) // make a new file's name durable too
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// lockFile opens path and takes an exclusive flock on it. Because Flush
// replaces files by rename, it checks after locking that the path still
// names the locked file, and retries otherwise.
func lockFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		unlock(f)
		if err2 != nil && !create {
			return nil, err2
		}
	}
}

func unlock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}

// Files lists spool files, oldest deployment first by modification time.
func (s *Spool) Files() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool directory: %w", err)
	}
	type file struct {
		path string
		mod  int64
	}
	var files []file
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), spoolExt) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{filepath.Join(s.dir, e.Name()), info.ModTime().UnixNano()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod < files[j].mod })
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out, nil
}

// FlushResult counts what a flush did.
type FlushResult struct {
	Files, Sent, Remaining, Rejected int
	// SentItems counts the events and lines inside the sent requests.
	SentItems int
}

// Flush sends every spooled request, file by file in order. A file is
// removed once all of it is delivered; when the receiver is unavailable
// the rest stays for next time and Flush returns the error.
func (s *Spool) Flush(ctx context.Context, c *Client) (FlushResult, error) {
	var res FlushResult
	files, err := s.Files()
	if err != nil {
		return res, err
	}
	for _, p := range files {
		r, err := s.FlushFile(ctx, c, p)
		res.Files++
		res.Sent += r.Sent
		res.SentItems += r.SentItems
		res.Remaining += r.Remaining
		res.Rejected += r.Rejected
		if err != nil {
			for _, rest := range files[res.Files:] {
				res.Remaining += countLines(rest)
			}
			return res, err
		}
	}
	return res, nil
}

// FlushDeployment flushes the spool file of one deployment, if any.
func (s *Spool) FlushDeployment(ctx context.Context, c *Client, deployment string) (FlushResult, error) {
	p := s.Path(deployment)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return FlushResult{}, nil
	}
	return s.FlushFile(ctx, c, p)
}

// FlushFile sends the requests of one spool file.
func (s *Spool) FlushFile(ctx context.Context, c *Client, path string) (FlushResult, error) {
	res := FlushResult{Files: 1}
	f, err := lockFile(path, false)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer unlock(f)
	var reqs []*Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r Request
		if err := json.Unmarshal(line, &r); err != nil {
			// A torn last line from a crash mid-append: keep its bytes
			// with the rejected ones rather than drop them silently.
			_ = s.Reject(&Request{Deployment: "unreadable", Body: string(line)})
			res.Rejected++
			continue
		}
		reqs = append(reqs, &r)
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read spool %s: %w", path, err)
	}
	var sendErr error
	sent := 0
	for _, r := range reqs {
		err := c.Send(ctx, r)
		var rej *RejectedError
		if errors.As(err, &rej) && !rej.Unauthorized() {
			if rerr := s.Reject(r); rerr != nil {
				sendErr = rerr
				break
			}
			res.Rejected++
			sent++
			continue
		}
		if err != nil {
			sendErr = err
			break
		}
		res.Sent++
		res.SentItems += r.Items
		sent++
	}
	rest := reqs[sent:]
	res.Remaining = len(rest)
	if len(rest) == 0 {
		if err := os.Remove(path); err != nil {
			return res, fmt.Errorf("remove flushed spool: %w", err)
		}
		return res, sendErr
	}
	if sent > 0 {
		if err := rewrite(path, rest); err != nil {
			return res, err
		}
	}
	return res, sendErr
}

// rewrite atomically replaces path with reqs (write, fsync, rename).
func rewrite(path string, reqs []*Request) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rewrite-*")
	if err != nil {
		return fmt.Errorf("rewrite spool: %w", err)
	}
	defer os.Remove(tmp.Name())
	enc := json.NewEncoder(tmp)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			tmp.Close()
			return fmt.Errorf("rewrite spool: %w", err)
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite spool: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewrite spool: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rewrite spool: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

func countLines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

// Pending counts spooled requests across all files.
func (s *Spool) Pending() (int, error) {
	files, err := s.Files()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		n += countLines(f)
	}
	return n, nil
}
