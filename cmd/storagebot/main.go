// Command storagebot runs the storagebot Teams bot, scans a tenant's Team
// storage from the command line, and runs a self-contained demo against a
// simulated tenant.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks a command-line mistake: the command prints its usage and
// exits with status 2.
var errUsage = errors.New("invalid usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "run the bot against a simulated school tenant and ask it for the top 10 teams", runDemo},
	{"serve", "run the bot's webhook for a real tenant", runServe},
	{"scan", "scan a tenant's Team storage once and print it as CSV, JSON or a table", runScan},
	{"bench", "measure storagebot and two naive scanners against the simulated tenant", runBench},
	{"healthcheck", "check that a running server answers /healthz (for container health checks)", runHealthcheck},
	{"digest", "post this period's weekly storage digest now (--now), or print it (--dry-run)", runDigest},
	{"manifest", "write the Teams app package (manifest.json and icons) for upload to Teams", runManifest},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], osEnv{}, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit status.
func run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintf(stdout, "storagebot %s\n", version)
		return 0
	}

	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], env, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "storagebot %s: %v\n", c.name, err)
			fmt.Fprintf(stderr, "Run 'storagebot %s --help' for usage.\n", c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "storagebot %s: %v\n", c.name, err)
			return 1
		}
	}

	fmt.Fprintf(stderr, "storagebot: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "storagebot tells Microsoft 365 admins which Teams use their SharePoint storage.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: storagebot <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'storagebot <command> --help' for the flags of a command.")
	fmt.Fprintln(w, "Settings are read from the environment; the README lists them all.")
}

// newFlagSet returns a flag set whose usage text starts with the command's
// synopsis and whose errors go to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: storagebot %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns flag errors into errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
