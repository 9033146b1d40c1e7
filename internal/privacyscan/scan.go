package privacyscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultExclude lists the data dir entries Scan skips. sandbox/ holds the
// Salesforce sandbox's snapshot: it is the stand-in for the customer's CRM,
// which legitimately holds contacts, not webcaresync's own data.
var DefaultExclude = []string{"sandbox"}

// MaxHitsPerNeedle bounds the hits a report lists for one needle; Count
// still counts them all.
const MaxHitsPerNeedle = 50

// chunkSize is how much of a file is searched at a time.
const chunkSize = 4 << 20

// NamedReader is extra data to scan, such as captured logs.
type NamedReader struct {
	// Name identifies the source in the report, such as "logs".
	Name string
	// R is read to the end.
	R io.Reader
}

// Options configure a scan.
type Options struct {
	// Exclude lists paths relative to the data dir (files or directories)
	// not to scan. Nil means DefaultExclude; use an empty, non-nil slice
	// to scan everything.
	Exclude []string
}

// Hit is one occurrence of a needle.
type Hit struct {
	// Source is the file, relative to the data dir, or the name of an extra
	// reader.
	Source string `json:"source"`
	// Offset is the byte offset of the occurrence in the source.
	Offset int64 `json:"offset"`
	// Encoding is the form that matched: plain, lowercase, json-escaped,
	// utf-16le, base64 (alignment n), base64url (alignment n), hex, ...
	Encoding string `json:"encoding"`
}

// NeedleReport is what a scan found for one needle.
type NeedleReport struct {
	// Kind and Label are the needle's; the value is never reported.
	Kind  string `json:"kind"`
	Label string `json:"label"`
	// Forms is the number of encoded forms searched for.
	Forms int `json:"forms"`
	// Count is the number of occurrences.
	Count int `json:"count"`
	// BySource counts the occurrences per source.
	BySource map[string]int `json:"by_source,omitempty"`
	// Hits lists the first MaxHitsPerNeedle occurrences.
	Hits []Hit `json:"hits,omitempty"`
}

// Source is one file or reader that was scanned.
type Source struct {
	// Name is the path relative to the data dir, or the reader's name.
	Name string `json:"name"`
	// Size is the number of bytes scanned.
	Size int64 `json:"size"`
}

// Report is the result of a scan. It holds no needle values and no bytes
// of the scanned data, so it can be printed and logged.
type Report struct {
	// Dir is the scanned data dir.
	Dir string `json:"dir"`
	// Excluded lists the skipped paths, relative to Dir.
	Excluded []string `json:"excluded"`
	// Sources lists what was scanned.
	Sources []Source `json:"sources"`
	// Needles has one entry per needle, in the order given.
	Needles []NeedleReport `json:"needles"`
}

// Total returns the number of occurrences of all needles.
func (r Report) Total() int {
	n := 0
	for _, nr := range r.Needles {
		n += nr.Count
	}
	return n
}

// Found returns the reports of the needles that occur, in order.
func (r Report) Found() []NeedleReport {
	var out []NeedleReport
	for _, nr := range r.Needles {
		if nr.Count > 0 {
			out = append(out, nr)
		}
	}
	return out
}

// CountIn returns how often the needles of a kind occur in sources whose
// name starts with prefix ("" for all sources).
func (r Report) CountIn(kind, prefix string) int {
	n := 0
	for _, nr := range r.Needles {
		if nr.Kind != kind {
			continue
		}
		for src, c := range nr.BySource {
			if strings.HasPrefix(src, prefix) {
				n += c
			}
		}
	}
	return n
}

// WriteText writes the report for a person: what was scanned, then one
// line per needle with its count, then the hits.
func (r Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Scanned %d sources in %s", len(r.Sources), r.Dir)
	if len(r.Excluded) > 0 {
		fmt.Fprintf(&b, " (excluded: %s; the sandbox is the stand-in CRM, not webcaresync's data)", strings.Join(r.Excluded, ", "))
	}
	b.WriteString(":\n")
	for _, s := range r.Sources {
		fmt.Fprintf(&b, "  %-40s %12d bytes\n", s.Name, s.Size)
	}
	fmt.Fprintf(&b, "Needles (%d), each searched in its encoded forms (%s):\n", len(r.Needles), strings.Join(Encodings(), ", "))
	for _, nr := range r.Needles {
		verdict := "not found"
		if nr.Count > 0 {
			verdict = fmt.Sprintf("FOUND %d times", nr.Count)
		}
		fmt.Fprintf(&b, "  %-32s %2d forms  %s\n", nr.Label, nr.Forms, verdict)
		srcs := make([]string, 0, len(nr.BySource))
		for src := range nr.BySource {
			srcs = append(srcs, src)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			fmt.Fprintf(&b, "    %d in %s\n", nr.BySource[src], src)
		}
		for _, h := range nr.Hits {
			fmt.Fprintf(&b, "      %s @ %d (%s)\n", h.Source, h.Offset, h.Encoding)
		}
		if nr.Count > len(nr.Hits) {
			fmt.Fprintf(&b, "      ... and %d more\n", nr.Count-len(nr.Hits))
		}
	}
	if t := r.Total(); t > 0 {
		fmt.Fprintf(&b, "Result: %d occurrences found.\n", t)
	} else {
		b.WriteString("Result: no personal data found.\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Scan searches every file under dir, except DefaultExclude, and the extra
// readers for the needles in all their encodings. See Options.Scan.
func Scan(dir string, needles []Needle, extraReaders ...NamedReader) (Report, error) {
	return Options{}.Scan(dir, needles, extraReaders...)
}

// Scan searches every regular file under dir (symbolic links are not
// followed), except the excluded paths, and then the extra readers, for
// each needle in each of its encodings. Files are opened read-only, so a
// live data dir can be scanned while webcaresync runs. An empty dir scans
// only the readers.
func (o Options) Scan(dir string, needles []Needle, extraReaders ...NamedReader) (Report, error) {
	exclude := o.Exclude
	if exclude == nil {
		exclude = DefaultExclude
	}
	rep := Report{Dir: dir, Excluded: append([]string(nil), exclude...)}
	m, err := newMatcher(needles)
	if err != nil {
		return rep, err
	}
	if dir != "" {
		var files []string
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			rel = filepath.ToSlash(rel)
			if rel != "." && excluded(rel, exclude) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("scan %s: %w", dir, err)
		}
		sort.Strings(files)
		for _, rel := range files {
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we walked (a SQLite -shm, a temp file)
			}
			if err != nil {
				return rep, fmt.Errorf("scan %s: %w", rel, err)
			}
			n, err := m.scan(rel, f)
			_ = f.Close()
			if err != nil {
				return rep, fmt.Errorf("scan %s: %w", rel, err)
			}
			rep.Sources = append(rep.Sources, Source{Name: rel, Size: n})
		}
	}
	for _, r := range extraReaders {
		n, err := m.scan(r.Name, r.R)
		if err != nil {
			return rep, fmt.Errorf("scan %s: %w", r.Name, err)
		}
		rep.Sources = append(rep.Sources, Source{Name: r.Name, Size: n})
	}
	rep.Needles = m.reports
	return rep, nil
}

func excluded(rel string, exclude []string) bool {
	for _, e := range exclude {
		e = strings.Trim(filepath.ToSlash(e), "/")
		if rel == e || strings.HasPrefix(rel, e+"/") {
			return true
		}
	}
	return false
}

// matcher searches sources for the patterns of all needles.
type matcher struct {
	pats    []needlePattern
	maxLen  int
	chunk   int
	reports []NeedleReport
}

type needlePattern struct {
	needle int
	pattern
}

func newMatcher(needles []Needle) (*matcher, error) {
	m := &matcher{chunk: chunkSize}
	for i, n := range needles {
		if len(n.Value) < MinNeedleLen {
			return nil, fmt.Errorf("needle %s is shorter than %d bytes: give a longer value", n.Label, MinNeedleLen)
		}
		label := n.Label
		if label == "" || strings.Contains(label, n.Value) {
			// The report must not leak the value through its label.
			label = fmt.Sprintf("#%d", i)
		}
		ps := patterns(n.Value)
		for _, p := range ps {
			m.pats = append(m.pats, needlePattern{i, p})
			m.maxLen = max(m.maxLen, len(p.bytes))
		}
		m.reports = append(m.reports, NeedleReport{Kind: n.Kind, Label: label, Forms: len(ps)})
	}
	return m, nil
}

// scan reads r to the end in chunks that overlap by the longest pattern
// minus one byte, so that no occurrence is split, and returns the number of
// bytes read.
func (m *matcher) scan(name string, r io.Reader) (int64, error) {
	overlap := max(m.maxLen-1, 0)
	buf := make([]byte, 0, m.chunk+overlap)
	var base int64 // absolute offset of buf[0]
	var total int64
	last := make([]int64, len(m.pats)) // last reported offset per pattern
	for i := range last {
		last[i] = -1
	}
	for {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		total += int64(n)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return total, err
		}
		for pi, p := range m.pats {
			for from := 0; ; {
				i := bytes.Index(buf[from:], p.bytes)
				if i < 0 {
					break
				}
				off := base + int64(from+i)
				if off > last[pi] {
					last[pi] = off
					m.record(p.needle, Hit{Source: name, Offset: off, Encoding: p.encoding})
				}
				from += i + 1
			}
		}
		if eof {
			return total, nil
		}
		if keep := min(overlap, len(buf)); keep > 0 {
			base += int64(len(buf) - keep)
			copy(buf, buf[len(buf)-keep:])
			buf = buf[:keep]
		} else {
			base += int64(len(buf))
			buf = buf[:0]
		}
	}
}

func (m *matcher) record(needle int, h Hit) {
	nr := &m.reports[needle]
	nr.Count++
	if nr.BySource == nil {
		nr.BySource = map[string]int{}
	}
	nr.BySource[h.Source]++
	if len(nr.Hits) < MaxHitsPerNeedle {
		nr.Hits = append(nr.Hits, h)
	}
}
