package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// passwordEnv is the environment variable send and recv take a client's password from
// when --password-file is not given. There is no --password flag: a command line is
// visible to every user of the machine (ps, /proc/PID/cmdline); a file readable only by
// its owner, or the environment (/proc/PID/environ is the owner's alone), is not.
const passwordEnv = "CPMLINK_PASSWORD"

// addPasswordFlag adds --password-file to send and recv.
func addPasswordFlag(fs *flag.FlagSet) *string {
	return fs.String("password-file", "", "`file` whose first line is the client's password, for a PF with auth (default: $"+passwordEnv+")")
}

// clientPassword is the password a client answers its PF's challenges with: the first
// line of file, else $CPMLINK_PASSWORD; "" when its PF has no auth. The username is the
// client's user in the configuration, by default its URI's user part.
func clientPassword(cfg *deploy.ServeConfig, uri, file string) (string, error) {
	user, on := cfg.ClientAuth(uri)
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		line, err := bufio.NewReader(f).ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if err != nil && !errors.Is(err, io.EOF) {
				return "", fmt.Errorf("--password-file %s: %w", file, err)
			}
			return "", fmt.Errorf("--password-file %s: the first line is empty: it must hold the password of user %q", file, user)
		}
		return line, nil
	}
	if !on {
		return "", nil
	}
	if pw := os.Getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	pf, _ := cfg.ClientPF(uri)
	return "", fmt.Errorf("%s's pf %s authenticates its clients (auth): give the password of user %q with --password-file FILE or in $%s", uri, pf, user, passwordEnv)
}
