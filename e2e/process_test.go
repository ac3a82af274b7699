//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a stopped process group gets between SIGTERM and
// SIGKILL.
const stopGrace = 5 * time.Second

// outputTailBytes is how much of a process's output a failed test logs.
const outputTailBytes = 4096

// process is a program that the test started in a process group of its own,
// so that stopping it also stops every child it started.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *outputBuffer
	exited chan struct{}
	err    error // the result of Wait, set before exited is closed
}

// startProcess starts cmd in a new process group with stdout and stderr
// captured, and registers a cleanup that stops the group by its id and, when
// the test failed, logs the end of the output.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()

	p := &process{name: name, cmd: cmd, output: newOutputBuffer(), exited: make(chan struct{})}
	cmd.Stdout = p.output
	cmd.Stderr = p.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild that keeps the output pipe open must not block Wait.
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s output (last %d bytes):\n%s", name, outputTailBytes, p.output.tail(outputTailBytes))
		}
	})
	return p
}

// stop sends SIGTERM to the process group, then SIGKILL if the leader has not
// exited within stopGrace.
func (p *process) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
		// The leader is gone, but children in its group may remain.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}

	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Logf("stop %s: send SIGTERM to process group %d: %v", p.name, pgid, err)
	}
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Logf("stop %s: process group %d still running after %s, sending SIGKILL", p.name, pgid, stopGrace)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
}

// waitOutput waits until the process's output matches re and returns the
// first submatch. It fails when the process exits or ctx ends first.
func (p *process) waitOutput(ctx context.Context, re *regexp.Regexp) (string, error) {
	for {
		changed := p.output.changed()
		if m := re.FindSubmatch(p.output.bytes()); m != nil {
			return string(m[1]), nil
		}
		select {
		case <-changed:
		case <-p.exited:
			if m := re.FindSubmatch(p.output.bytes()); m != nil {
				return string(m[1]), nil
			}
			return "", fmt.Errorf("wait for %s output %q: process exited: %v", p.name, re, p.err)
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %s output %q: %w", p.name, re, ctx.Err())
		}
	}
}

// outputBuffer collects a process's output and lets a reader wait for the
// next write instead of polling.
type outputBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // closed and replaced on every write
}

func newOutputBuffer() *outputBuffer {
	return &outputBuffer{notify: make(chan struct{})}
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	n, err := b.buf.Write(p)
	close(b.notify)
	b.notify = make(chan struct{})
	return n, err
}

// changed returns a channel that is closed at the next write.
func (b *outputBuffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notify
}

func (b *outputBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *outputBuffer) tail(n int) string {
	out := b.bytes()
	return string(out[max(0, len(out)-n):])
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago. Another process may take it before the caller binds it, which shows as
// a start failure of the program that gets it.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tcpListener is one listening socket as `ss -ltnp` reports it.
type tcpListener struct {
	local netip.AddrPort
	pid   int
}

// listenersOf returns the TCP listening sockets that belong to processes in
// the process group pgid, read with `ss -ltnpH` (iproute2) and /proc.
func listenersOf(ctx context.Context, pgid int) ([]tcpListener, error) {
	pids, err := groupPIDs(pgid)
	if err != nil {
		return nil, err
	}

	out, err := exec.CommandContext(ctx, "ss", "-ltnpH").Output()
	if err != nil {
		return nil, fmt.Errorf("run ss -ltnpH: %w", err)
	}

	var listeners []tcpListener
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) < 6 {
			continue
		}
		for _, pid := range ssPIDs(strings.Join(fields[5:], " ")) {
			if !pids[pid] {
				continue
			}
			local, err := parseSSAddress(fields[3])
			if err != nil {
				return nil, err
			}
			listeners = append(listeners, tcpListener{local: local, pid: pid})
		}
	}
	return listeners, nil
}

// groupPIDs returns the ids of the running processes whose process group is
// pgid, from field 5 of /proc/<pid>/stat (proc(5)).
func groupPIDs(pgid int) (map[int]bool, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}

	pids := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process exited meanwhile
		}
		// The command name in field 2 is in parentheses and may contain
		// spaces, so the fields are counted after its closing parenthesis.
		end := bytes.LastIndexByte(stat, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgid) {
			pids[pid] = true
		}
	}
	return pids, nil
}

var ssPIDPattern = regexp.MustCompile(`pid=([0-9]+)`)

// ssPIDs returns the process ids in the users:(...) column of ss.
func ssPIDs(column string) []int {
	var pids []int
	for _, m := range ssPIDPattern.FindAllStringSubmatch(column, -1) {
		if pid, err := strconv.Atoi(m[1]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parseSSAddress parses a local address column of ss: "127.0.0.1:80",
// "[::1]:80", "[fe80::1]%eth0:80", "*:80" or "0.0.0.0%lo:80". A wildcard
// becomes the unspecified IPv6 address.
func parseSSAddress(column string) (netip.AddrPort, error) {
	colon := strings.LastIndexByte(column, ':')
	if colon < 0 {
		return netip.AddrPort{}, fmt.Errorf("parse ss address %q: missing port", column)
	}
	host, port := column[:colon], column[colon+1:]
	host, _, _ = strings.Cut(host, "%")
	host = strings.Trim(host, "[]")
	if host == "*" {
		host = "::"
	}

	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse ss address %q: %w", column, err)
	}
	portNumber, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse ss address %q: %w", column, err)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(portNumber)), nil
}

// requireLoopbackOnly fails the test unless every TCP listener of the process
// group of p is on a loopback address and one of them is on wantPort, so the
// check cannot pass on an empty list.
func requireLoopbackOnly(ctx context.Context, t *testing.T, p *process, wantPort int) {
	t.Helper()

	listeners, err := listenersOf(ctx, p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("list listening sockets of %s: %v", p.name, err)
	}

	found := false
	var exposed []string
	for _, l := range listeners {
		if !l.local.Addr().IsLoopback() {
			exposed = append(exposed, fmt.Sprintf("%s (pid %d)", l.local, l.pid))
		}
		if int(l.local.Port()) == wantPort {
			found = true
		}
	}
	// Stop at once: the rest of the test would keep the exposed port open.
	if len(exposed) > 0 {
		t.Fatalf("%s listens on %v, want loopback addresses only", p.name, exposed)
	}
	if !found {
		t.Fatalf("%s listens on %v, want one listener on port %d", p.name, listeners, wantPort)
	}
}

func TestParseSSAddress(t *testing.T) {
	tests := []struct {
		column       string
		want         string
		wantLoopback bool
	}{
		{column: "127.0.0.1:56150", want: "127.0.0.1:56150", wantLoopback: true},
		{column: "[::1]:56150", want: "[::1]:56150", wantLoopback: true},
		{column: "[::ffff:127.0.0.1]:56150", want: "127.0.0.1:56150", wantLoopback: true},
		{column: "*:56150", want: "[::]:56150"},
		{column: "0.0.0.0:56150", want: "0.0.0.0:56150"},
		{column: "[::]:56150", want: "[::]:56150"},
		{column: "0.0.0.0%lo:53", want: "0.0.0.0:53"},
		{column: "[fe80::1]%eth0:546", want: "[fe80::1]:546"},
	}
	for _, tt := range tests {
		t.Run(tt.column, func(t *testing.T) {
			got, err := parseSSAddress(tt.column)
			if err != nil {
				t.Fatalf("parseSSAddress(%q): %v", tt.column, err)
			}
			if got.String() != tt.want {
				t.Errorf("parseSSAddress(%q) = %s, want %s", tt.column, got, tt.want)
			}
			if got.Addr().IsLoopback() != tt.wantLoopback {
				t.Errorf("parseSSAddress(%q) loopback = %t, want %t", tt.column, got.Addr().IsLoopback(), tt.wantLoopback)
			}
		})
	}
}

func TestParseSSAddressInvalid(t *testing.T) {
	for _, column := range []string{"", "127.0.0.1", "localhost:80", "127.0.0.1:http", "127.0.0.1:70000"} {
		t.Run(column, func(t *testing.T) {
			if got, err := parseSSAddress(column); err == nil {
				t.Errorf("parseSSAddress(%q) = %s, want an error", column, got)
			}
		})
	}
}
