// Command webinspect is the line-scan web inspection engine.
//
//	webinspect run      [flags]                              inspect a live source and serve the UI
//	webinspect simulate --out DIR [flags]                    write a simulated recording and truth.csv
//	webinspect replay   DIR --rolls OUTDIR [flags]           inspect a recording into a roll map
//	webinspect teach    --from DIR|RECORDING --out MODELDIR  build an anomaly model from good material
//	webinspect eval     DATASET_DIR [flags]                  AUROC, pixel AUROC and PRO of a model
//	webinspect export   ROLL --format F [flags]              csv, json, parquet, cutlist, pdf or html
//	webinspect compare  ROLL --model NEW [--recipe NEW]      what a candidate model or recipe would change on a roll
//	webinspect bench    [flags]                              the benchmark scenarios
//	webinspect cameras  [--dump ADDR | --set ADDR F=V…]      GigE Vision and USB3 Vision cameras, their features
//	webinspect camera-sim [flags]                            emulated line-scan GigE Vision cameras
//
// `webinspect <command> -h` lists a command's flags; README.md ("Commands")
// has them all with examples. The command line is a contract that scripts
// depend on: flags may grow, but names and exported columns keep their
// meaning.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// usageError is a command-line mistake: printed as one line, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"run", "inspect a live source (default: the simulator) and serve the UI; --plant publishes to the plant's NATS", cmdRun},
	{"simulate", "write a simulated recording and its truth.csv", cmdSimulate},
	{"replay", "inspect a recording into a roll map", cmdReplay},
	{"teach", "build an anomaly model (ONNX) from good material only", cmdTeach},
	{"eval", "evaluate a model on an image data set (AUROC, pixel AUROC, PRO)", cmdEval},
	{"export", "export a roll map as csv, json, parquet or a cutting list (cutlist), or its one-page report as pdf or html", cmdExport},
	{"learn", "train the defect classifier from the reviewed defects of the rolls (their archived crops and final classes)", cmdLearn},
	{"compare", "re-score a stored roll with a candidate model or recipe and list what would change (CSV and HTML)", cmdCompare},
	{"calibrate", "re-calibrate a recipe's detector thresholds from the reviews of the rolls: the curve of confirmed defects kept against false alarms removed, the proposal, --apply for a new recipe version", cmdCalibrate},
	{"reteach", "fold the regions reviewers marked as false alarms into a taught model, as a new model version (the old one stays)", cmdReteach},
	{"versions", "list the recipe and model versions the rolls were inspected with, who made each and when", cmdVersions},
	{"bench", "run the benchmark scenarios live on the simulator", cmdBench},
	{"cameras", "list GigE Vision and USB3 Vision cameras, dump or set their features", cmdCameras},
	{"plant", "run the plant service: consume every line over NATS JetStream into a plant dataset and serve the plant page; plant compact merges the dataset's part files (the service does it in its background)", cmdPlant},
	{"nats", "run the plant's NATS JetStream server as its own process (plant --nats and run --plant connect to it, with the token of --nats-token-file; over TLS with --tls-cert/--tls-key and their --nats-ca)", cmdNats},
	{"camera-sim", "serve emulated line-scan GigE Vision cameras over the simulated web", cmdCameraSim},
}

// synopses are each command's arguments after its name, as the usage and
// -h show them.
var synopses = map[string]string{
	"run":           "[flags]",
	"simulate":      "--out DIR [flags]",
	"replay":        "DIR --rolls OUTDIR [flags]",
	"teach":         "--from DIR|RECORDING --out MODELDIR [flags]",
	"eval":          "DATASET_DIR [--model MODELDIR] [flags]",
	"export":        "ROLL --format csv|json|parquet|cutlist|pdf|html [--out FILE] [flags]",
	"learn":         "--rolls DIR --out CLASSIFIERDIR [flags]",
	"compare":       "ROLL [--model NEW] [--recipe NEW] [--classifier NEW] [--out DIR] [--recording DIR] [flags]",
	"reteach":       "--model OLDDIR --out NEWDIR ROLLDIR[=RECORDING]... [flags]",
	"versions":      "[--rolls DIR] [--kind recipe|model|classifier] [--json]",
	"calibrate":     "--rolls DIR [--roll ID,…] [--recipe VERSION|FILE|NAME] [--json] [--apply [--by NAME] [--out FILE]]",
	"bench":         "[flags]",
	"cameras":       "[--dump ADDR|SERIAL] [--set ADDR|SERIAL Feature=Value…] [flags]",
	"camera-sim":    "[--cameras N] [--listen 127.0.0.1] [flags]",
	"plant":         "[--nats URL,…] [--data DIR] [--listen 127.0.0.1:8090] [--nats-token-file FILE] [--nats-ca FILE] [flags]",
	"plant compact": "[--data DIR] [--compact-grace 2h] [--compact-max-parts 512] [--compact-max-rows N]",
	"nats":          "[--listen 127.0.0.1:4222] [--store DIR] [--nats-token-file FILE | --insecure] [--tls-cert FILE --tls-key FILE] [flags]",
}

// synopsisOf returns the arguments of command name for its usage line.
func synopsisOf(name string) string {
	if s, ok := synopses[name]; ok {
		return s
	}
	return "[flags]"
}

var log zerolog.Logger

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	level := zerolog.InfoLevel
	if v := os.Getenv("WEBINSPECT_LOG"); v != "" {
		if l, err := zerolog.ParseLevel(v); err == nil {
			level = l
		}
	}
	log = newLogger(stderr, level)

	if len(args) == 0 {
		// A command-line mistake: the usage goes to stderr, as errors do.
		printUsage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "webinspect: unknown command %q (commands: %s)\n", args[0], commandNames())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "webinspect %s: %s\n", cmd.name, oneLine(err.Error()))
		return 2
	default:
		fmt.Fprintf(stderr, "webinspect %s: %s\n", cmd.name, oneLine(err.Error()))
		return 1
	}
}

// newLogger returns the console logger on w: coloured only when w is a
// terminal, so that "webinspect run > log 2>&1" writes plain text.
func newLogger(w io.Writer, level zerolog.Level) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}).
		Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a character device (a terminal), and
// $NO_COLOR is not set.
func isTerminal(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func commandNames() string {
	var n []string
	for _, c := range commands {
		n = append(n, c.name)
	}
	return strings.Join(n, ", ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: webinspect <command> [arguments] [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		fmt.Fprintf(w, "  %-10s   webinspect %s %s\n", "", c.name, synopsisOf(c.name))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'webinspect <command> -h' for a command's flags.")
}

// parseFlags parses flags that may come before or after positional
// arguments (as in "replay DIR --rolls R") and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fmt.Fprintf(stdout, "usage: webinspect %s %s\n\nflags:\n", fs.Name(), synopsisOf(fs.Name()))
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usageError{redactSecretFlag(err.Error())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// redactSecretFlag drops the value from the flag package's error about a
// flag whose name ends in "token" (--token, --nats-token: refused, since
// ps shows them): the value is a secret and errors do not repeat it.
func redactSecretFlag(msg string) string {
	rest, ok := strings.CutPrefix(msg, "invalid value ")
	if !ok {
		return msg
	}
	i := strings.LastIndex(rest, " for flag -")
	if i < 0 {
		return msg
	}
	name, why, ok := strings.Cut(rest[i+len(" for flag -"):], ": ")
	if !ok || !strings.HasSuffix(name, "token") {
		return msg
	}
	return "flag -" + name + ": " + why
}
