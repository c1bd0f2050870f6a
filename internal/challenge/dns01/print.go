package dns01

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PrintProviders writes, for `zoku dns providers [code]`, either the list of
// every provider (code == "": code, name, and whether this binary can use
// it) or one provider's variables. An unknown code gives Lookup's error and
// prints nothing.
func PrintProviders(w io.Writer, code string) error {
	if strings.TrimSpace(code) == "" {
		return printList(w)
	}
	info, err := Lookup(code)
	if err != nil {
		return err
	}
	return printOne(w, info)
}

func printList(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	linked, unavailable := 0, 0
	for _, info := range Providers() {
		state := ""
		switch {
		case info.Unavailable:
			state = "unavailable in this build"
			unavailable++
		case !info.Linked:
			state = "not linked into this binary"
		default:
			linked++
		}
		code := info.Code
		if len(info.Aliases) > 0 {
			code += " (" + strings.Join(info.Aliases, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", code, info.Name, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d providers from lego %s: %d usable here, %d unavailable in this build (the Go module proxy does not serve their SDK).\n"+
		"'zoku dns providers CODE' lists a provider's variables.\n", len(facts), legoVersion, linked, unavailable)
	return err
}

func printOne(w io.Writer, info Info) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", info.Code, info.Name)
	if len(info.Aliases) > 0 {
		fmt.Fprintf(&b, "aliases: %s\n", strings.Join(info.Aliases, ", "))
	}
	switch {
	case info.Unavailable:
		b.WriteString("status: unavailable in this build (the Go module proxy does not serve its SDK)\n")
	case !info.Linked:
		b.WriteString("status: not linked into this binary\n")
	}
	b.WriteString("credentials (each may also be given as NAME_FILE, naming a file that holds the value):\n")
	if len(info.Required) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, v := range info.Required {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	if len(info.Optional) > 0 {
		b.WriteString("optional:\n")
		for _, v := range info.Optional {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	if info.Note != "" {
		fmt.Fprintf(&b, "note: %s\n", info.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
