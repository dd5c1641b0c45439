package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzMenu types arbitrary input at the recovery menu (line noise on a
// serial line, a confused operator, a stuck key) against fake actions, and
// checks what the console promises on a dumb 80x24 terminal:
//
//   - the menu ends without error when the input ends;
//   - a factory reset happens only after a line that is exactly the typed
//     confirmation, and every other action that changes the box (reset
//     password, management address, boot the other slot, reboot) only
//     after a y/yes answer: each such call is matched by its own line;
//   - every line written is narrower than the screen and holds no control
//     character (an echoed escape sequence or backspace would garble the
//     terminal).
func FuzzMenu(f *testing.F) {
	for _, s := range []string{
		"1\n\n\n9\n",
		"4\nFACTORY RESET\n\n",
		"4\nfactory reset\n4\n FACTORY RESET \n",
		"3\ny\n\n",
		"2\nstatic\n192.0.2.10/24\n192.0.2.1\n192.0.2.53 198.51.100.53\ny\n\n",
		"2\ns\n2001:db8::10/64\n2001:db8::1\n2001:db8::53\nyes\n\n",
		"2\nstatic\nnonsense\n10.0.0.0/8\n\n\n\n",
		"2\ndhcp\nY\n\n5\nn\n6\nno\n7\n\n",
		"5\r\ny\r\n",
		"\x1b[2J\n\x7f\b\n2\ns\n\x1b[31m\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fk := &fake{status: sampleStatus(), password: "Gen-Pass-123", mgmt: Management{DHCP: true}}
		var out bytes.Buffer
		if err := (&Menu{In: &ttyLines{in: in, echo: &out}, Out: &out, Actions: fk}).Run(context.Background()); err != nil {
			t.Fatalf("menu ended with %v", err)
		}
		confirms, yeses := 0, 0
		for _, l := range strings.Split(string(in), "\n") {
			switch l = strings.TrimSpace(l); {
			case l == ConfirmFactoryReset:
				confirms++
			case strings.EqualFold(l, "y"), strings.EqualFold(l, "yes"):
				yeses++
			}
		}
		resets, changes := 0, 0
		for _, c := range fk.Calls() {
			switch {
			case c == "factory-reset":
				resets++
			case c == "reset-password", c == "boot-other", c == "reboot", strings.HasPrefix(c, "set-management "):
				changes++
			}
		}
		if resets > confirms || changes > yeses {
			t.Fatalf("%d factory resets for %d confirmations, %d changes for %d yes answers: %v", resets, confirms, changes, yeses, fk.Calls())
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if n := len([]rune(l)); n >= Width {
				t.Fatalf("line of %d columns: %q", n, l)
			}
			if i := strings.IndexFunc(l, unicode.IsControl); i >= 0 {
				t.Fatalf("control character %q written to the terminal: %q", l[i:i+1], l)
			}
		}
	})
}

// ttyLines is the menu's side of a terminal in canonical mode: a read
// returns at most one line, and the line's end is echoed, so that what the
// menu writes after a prompt starts on a line of its own as on the screen.
// The typed text itself is not echoed: it is the operator's, not the
// menu's.
type ttyLines struct {
	in   []byte
	echo *bytes.Buffer
}

func (l *ttyLines) Read(p []byte) (int, error) {
	if len(l.in) == 0 {
		return 0, io.EOF
	}
	line := l.in
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i+1]
	}
	n := copy(p, line)
	l.in = l.in[n:]
	if n == len(line) && line[n-1] == '\n' {
		l.echo.WriteByte('\n')
	}
	return n, nil
}

// FuzzParseNetworkFile reads arbitrary text as the management port's
// systemd.network file (written by ftconsole, maybe edited by hand). A file
// it accepts with a usable setting must survive a rewrite: NetworkFile of
// the result, read back, gives the same setting (DHCP, or the same
// address, gateway and name servers), so saving what the menu shows never
// changes the box's address. Errors name the key at fault.
func FuzzParseNetworkFile(f *testing.F) {
	f.Add(Management{DHCP: true}.NetworkFile("mgmt0"))
	f.Add(Management{Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}}.NetworkFile("mgmt0"))
	f.Add("[Network]\r\nAddress=2001:db8::10/64\r\nGateway=2001:db8::1\r\nDNS=fe80::1%mgmt0\r\n")
	f.Add("[Network]\nDHCP=ipv4\nAddress=10.0.0.2/8\n# Gateway=10.0.0.1\n")
	f.Add("[Network]\nDHCP=no\n")
	f.Add("Address=300.1.1.1/24\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseNetworkFile(text)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "DHCP") && !strings.HasPrefix(msg, "Address") &&
				!strings.HasPrefix(msg, "Gateway") && !strings.HasPrefix(msg, "DNS") && msg != "neither DHCP nor Address set" {
				t.Fatalf("error %q does not say what is wrong", msg)
			}
			return
		}
		if m.Validate() != nil {
			return // not a setting the menu would write
		}
		again, err := ParseNetworkFile(m.NetworkFile("mgmt0"))
		if err != nil {
			t.Fatalf("%+v written as\n%s\nis not read back: %v", m, m.NetworkFile("mgmt0"), err)
		}
		want := m
		if want.DHCP {
			want = Management{DHCP: true} // DHCP ignores the static fields
		}
		if again.DHCP != want.DHCP || again.Address != want.Address || again.Gateway != want.Gateway || !slices.Equal(again.DNS, want.DNS) {
			t.Fatalf("%+v read back as %+v", want, again)
		}
	})
}

// FuzzParseReplicas reads arbitrary bytes as the API's answer to GET
// /replicas (a daemon of another version, a half-written reply). It must
// give either replicas or a note saying why there are none, never both or
// neither; and what it gives, written back in the API's shape, reads back
// the same (nothing is lost or changed between the daemon and the status
// screen).
func FuzzParseReplicas(f *testing.F) {
	f.Add([]byte(`[{"name":"a","interface":"port1","health":"up","role":"primary"},{"name":"b","interface":"port2","state":"down"}]`))
	f.Add([]byte(`{"replicas":[{"name":"a","interface":"port1","health":{"state":"up","probe_rtt_ms":0.4}}]}`))
	f.Add([]byte(`{"replicas":[]}`))
	f.Add([]byte(`[{"name":"a","health":7}]`))
	f.Add([]byte(`{"error":{"code":"unauthorized","message":"x"}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		reps, note := ParseReplicas(b)
		if (len(reps) == 0) == (note == "") {
			t.Fatalf("replicas %+v with note %q", reps, note)
		}
		if len(reps) == 0 {
			return
		}
		type apiReplica struct {
			Name      string `json:"name"`
			Interface string `json:"interface"`
			Health    string `json:"health"`
		}
		var api []apiReplica
		for _, r := range reps {
			api = append(api, apiReplica(r))
		}
		data, err := json.Marshal(map[string]any{"replicas": api})
		if err != nil {
			t.Fatal(err)
		}
		again, note := ParseReplicas(data)
		if note != "" || !slices.Equal(again, reps) {
			t.Fatalf("%+v read back as %+v (%q)", reps, again, note)
		}
	})
}
