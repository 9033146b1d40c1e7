package sfsandbox

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// This file serves SOSL: GET /search?q=FIND {term} [IN ALL|NAME|EMAIL|PHONE
// FIELDS] [RETURNING Object[(field, ... [WHERE cond] [LIMIT n])], ...]
// [LIMIT n].

type soslReturning struct {
	object    string
	objectPos int
	fields    []fieldPath
	where     expr
	limit     int
}

type soslQuery struct {
	terms     []string
	anyTerm   bool // OR between terms
	scope     string
	returning []soslReturning
	limit     int
}

func malformedSearch(msg string) *soqlError {
	return &soqlError{code: "MALFORMED_SEARCH", pos: -1, msg: msg}
}

// parseSOSL parses a search. It never panics on any input.
func parseSOSL(q string) (*soslQuery, *soqlError) {
	trimmed := strings.TrimLeft(q, " \t\r\n")
	lead := len(q) - len(trimmed)
	if len(trimmed) < 4 || !strings.EqualFold(trimmed[:4], "FIND") {
		return nil, malformed(lead, "unexpected token: '%s'", firstWord(trimmed))
	}
	rest := strings.TrimLeft(trimmed[4:], " \t\r\n")
	if rest == "" || rest[0] != '{' {
		return nil, malformedSearch("No search term found. The search term must be enclosed in braces.")
	}
	var term strings.Builder
	i := 1
	closed := false
	for i < len(rest) {
		c := rest[i]
		if c == '\\' && i+1 < len(rest) {
			term.WriteByte(rest[i+1])
			i += 2
			continue
		}
		if c == '}' {
			closed = true
			i++
			break
		}
		term.WriteByte(c)
		i++
	}
	if !closed {
		return nil, malformedSearch("No search term found. The search term must be enclosed in braces.")
	}
	out := &soslQuery{scope: "ALL", limit: 2000}
	terms, anyTerm := splitTerms(term.String())
	if len(terms) == 0 {
		return nil, malformedSearch("search term must be longer than one character")
	}
	for _, t := range terms {
		if len(strings.Trim(t, "*?")) < 2 {
			return nil, malformedSearch("search term must be longer than one character")
		}
	}
	out.terms, out.anyTerm = terms, anyTerm

	offset := len(q) - len(rest) + i
	toks, lerr := lex(q[offset:])
	if lerr != nil {
		lerr.pos += offset
		return nil, lerr
	}
	for k := range toks {
		toks[k].pos += offset
	}
	p := &parser{toks: toks}
	if p.peek().is("IN") {
		p.next()
		scope := p.peek()
		switch {
		case scope.is("ALL"), scope.is("NAME"), scope.is("EMAIL"), scope.is("PHONE"):
			out.scope = strings.ToUpper(scope.text)
		default:
			return nil, p.unexpected()
		}
		p.next()
		if err := p.expectKw("FIELDS"); err != nil {
			return nil, err
		}
	}
	if p.peek().is("RETURNING") {
		p.next()
		for {
			t := p.peek()
			if t.kind != tIdent || reserved[strings.ToLower(t.text)] {
				return nil, p.unexpected()
			}
			p.next()
			ret := soslReturning{object: t.text, objectPos: t.pos, limit: -1}
			if p.peek().kind == tPunct && p.peek().text == "(" {
				p.next()
				for {
					fp, err := p.fieldPath()
					if err != nil {
						return nil, err
					}
					ret.fields = append(ret.fields, fp)
					if p.peek().kind == tPunct && p.peek().text == "," {
						p.next()
						continue
					}
					break
				}
				if p.peek().is("WHERE") {
					p.next()
					w, err := p.cond()
					if err != nil {
						return nil, err
					}
					ret.where = w
				}
				if p.peek().is("LIMIT") {
					p.next()
					n, err := p.nonNegInt()
					if err != nil {
						return nil, err
					}
					ret.limit = n
				}
				if err := p.expectPunct(")"); err != nil {
					return nil, err
				}
			}
			out.returning = append(out.returning, ret)
			if p.peek().kind == tPunct && p.peek().text == "," {
				p.next()
				continue
			}
			break
		}
	}
	if p.peek().is("LIMIT") {
		p.next()
		n, err := p.nonNegInt()
		if err != nil {
			return nil, err
		}
		out.limit = n
	}
	if p.peek().kind != tEOF {
		return nil, p.unexpected()
	}
	return out, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		return s[:i]
	}
	if s == "" {
		return "<EOF>"
	}
	return s
}

// splitTerms splits a search term into words and "quoted phrases". AND is
// the default operator; any OR makes it match any term.
func splitTerms(s string) ([]string, bool) {
	var out []string
	anyTerm := false
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				out = append(out, s[1:])
				break
			}
			if phrase := strings.TrimSpace(s[1 : end+1]); phrase != "" {
				out = append(out, phrase)
			}
			s = s[end+2:]
			continue
		}
		word := firstWord(s)
		s = s[len(word):]
		switch strings.ToUpper(word) {
		case "AND", "NOT":
			continue
		case "OR":
			anyTerm = true
			continue
		}
		out = append(out, word)
	}
	return out, anyTerm
}

func termRegexp(t string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?i)")
	for _, r := range t {
		switch r {
		case '*':
			b.WriteString(`\S*`)
		case '?':
			b.WriteString(`\S`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return regexp.MustCompile(b.String())
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func inScope(obj *objectDef, f *fieldDef, scope string) bool {
	switch scope {
	case "NAME":
		return f.Name == obj.NameField || f.Name == "FirstName" || f.Name == "LastName"
	case "EMAIL":
		return f.Type == "email"
	case "PHONE":
		return f.Type == "phone"
	}
	switch f.Type {
	case "string", "textarea", "email", "phone", "url", "combobox":
		return f.Name != "Id"
	}
	return false
}

func (s *Sandbox) searchMatch(obj *objectDef, r *record, q *soslQuery, res []*regexp.Regexp) bool {
	hit := func(i int) bool {
		term := q.terms[i]
		for _, f := range obj.Fields {
			if !inScope(obj, f, q.scope) {
				continue
			}
			v, _ := r.Fields[f.Name].(string)
			if v == "" {
				continue
			}
			if res[i].MatchString(v) {
				return true
			}
			if f.Type == "phone" {
				if d := digits(term); len(d) >= 3 && strings.Contains(digits(v), d) {
					return true
				}
			}
		}
		return false
	}
	for i := range q.terms {
		m := hit(i)
		if q.anyTerm && m {
			return true
		}
		if !q.anyTerm && !m {
			return false
		}
	}
	return !q.anyTerm
}

// serveSearch is GET /search?q=FIND {...}.
func (s *Sandbox) serveSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		writeErr(w, plainErr(http.StatusBadRequest, "MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces."))
		return
	}
	parsed, perr := parseSOSL(q)
	if perr != nil {
		writeErr(w, queryError(q, perr))
		return
	}
	returning := parsed.returning
	if len(returning) == 0 {
		for _, o := range s.ordered {
			returning = append(returning, soslReturning{object: o.Name, limit: -1})
		}
	}
	res := make([]*regexp.Regexp, len(parsed.terms))
	for i, t := range parsed.terms {
		res[i] = termRegexp(t)
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	version := apiVersion(r)
	found := []any{}
	for _, ret := range returning {
		obj := s.object(ret.object)
		if obj == nil {
			writeErr(w, queryError(q, &soqlError{code: "INVALID_TYPE", pos: ret.objectPos, msg: fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", ret.object)}))
			return
		}
		fields := ret.fields
		if len(fields) == 0 {
			fields = []fieldPath{{parts: []string{"Id"}}}
		}
		var selects []*resolvedPath
		for _, fp := range fields {
			rp, err := s.resolvePath(obj, fp)
			if err != nil {
				writeErr(w, queryError(q, err))
				return
			}
			selects = append(selects, rp)
		}
		cmps := map[*cmpExpr]*resolvedPath{}
		if ret.where != nil {
			if err := s.checkFilter(obj, ret.where, cmps); err != nil {
				writeErr(w, queryError(q, err))
				return
			}
		}
		n := 0
		for _, rec := range tx.live(obj.Name) {
			if ret.limit >= 0 && n >= ret.limit || len(found) >= parsed.limit {
				break
			}
			if !s.searchMatch(obj, rec, parsed, res) {
				continue
			}
			if ret.where != nil && !s.match(tx, rec, ret.where, cmps) {
				continue
			}
			found = append(found, s.renderRow(tx, version, obj, rec, selects))
			n++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"searchRecords": found})
}
