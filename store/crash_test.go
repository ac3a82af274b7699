package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// Settings for the child process of TestSaveScanKilledMidWrite.
const (
	// crashHelperVariable carries the SQLite path to the child process.
	crashHelperVariable = "STORAGEBOT_STORE_CRASH_HELPER_DB"
	// crashHelperPaused is the line the child prints while it is inside
	// SaveScan's transaction.
	crashHelperPaused = "paused inside SaveScan"
	// crashHelperTeams and crashHelperPauseAfter size the interrupted scan.
	// The rows written before the pause exceed SQLite's default page cache
	// of about 2 MB (cache_size -2000), so SQLite spills part of the
	// transaction into the WAL file before the kill. The test logs its size.
	crashHelperTeams      = 200 * teamBatchSize
	crashHelperPauseAfter = 150 * teamBatchSize
)

func TestSaveScanKilledMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	previous := newResult(baseTime, manyTeams(3)...)
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", path, err)
	}
	saveScan(t, s, previous)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSaveScanHelperProcess$")
	child.Env = append(os.Environ(), crashHelperVariable+"="+path)
	var stderr bytes.Buffer
	child.Stderr = &stderr
	stdin, err := child.StdinPipe() // held open so the child stays paused
	if err != nil {
		t.Fatalf("create stdin pipe: %v", err)
	}
	defer stdin.Close()
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatalf("create stdout pipe: %v", err)
	}
	if err := child.Start(); err != nil {
		t.Fatalf("start child process: %v", err)
	}

	paused := false
	var output bytes.Buffer
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		output.WriteString(lines.Text() + "\n")
		if lines.Text() == crashHelperPaused {
			paused = true
			break
		}
	}
	if !paused {
		child.Wait()
		t.Fatalf("child process ended before it paused inside SaveScan\nstdout:\n%s\nstderr:\n%s", output.String(), stderr.String())
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatalf("kill child process: %v", err)
	}
	child.Wait()
	status, ok := child.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("child process state = %v, want killed by SIGKILL", child.ProcessState)
	}
	if info, err := os.Stat(path + "-wal"); err == nil {
		t.Logf("WAL file size after the kill: %d bytes", info.Size())
	}

	reopened, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open(%q) after the kill error = %v", path, err)
	}
	defer reopened.Close()
	var integrity string
	if err := reopened.(*sqlStore).db.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&integrity); err != nil {
		t.Fatalf("PRAGMA integrity_check error = %v", err)
	}
	if integrity != "ok" {
		t.Errorf("PRAGMA integrity_check = %q, want ok", integrity)
	}
	got, err := reopened.LatestScan(t.Context())
	if err != nil {
		t.Fatalf("LatestScan() after the kill error = %v", err)
	}
	if !reflect.DeepEqual(got, storedForm(previous)) {
		t.Errorf("LatestScan() after the kill = scan finished %s with %d Teams, want the previous scan with %d Teams",
			got.FinishedAt, len(got.Teams), len(previous.Teams))
	}

	next := newResult(baseTime.Add(24*time.Hour), manyTeams(5)...)
	saveScan(t, reopened, next)
	got, err = reopened.LatestScan(t.Context())
	if err != nil {
		t.Fatalf("LatestScan() after a new save error = %v", err)
	}
	if !reflect.DeepEqual(got, storedForm(next)) {
		t.Errorf("LatestScan() after a new save = scan finished %s, want %s", got.FinishedAt, next.FinishedAt)
	}
}

// TestSaveScanHelperProcess is the child process of
// TestSaveScanKilledMidWrite. It starts saving a large scan, prints
// crashHelperPaused from inside the transaction and waits for stdin to close,
// which does not happen before the parent kills it.
func TestSaveScanHelperProcess(t *testing.T) {
	path := os.Getenv(crashHelperVariable)
	if path == "" {
		t.Skip("runs only as the child process of TestSaveScanKilledMidWrite")
	}

	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", path, err)
	}
	s.(*sqlStore).afterTeamBatch = func(saved int) {
		if saved == crashHelperPauseAfter {
			fmt.Println(crashHelperPaused)
			io.Copy(io.Discard, os.Stdin)
		}
	}
	result := newResult(baseTime.Add(time.Hour), manyTeams(crashHelperTeams)...)
	if _, err := s.SaveScan(context.Background(), result); err != nil {
		t.Fatalf("SaveScan() error = %v", err)
	}
	t.Fatal("SaveScan() returned, but the parent process should have killed this process inside it")
}
