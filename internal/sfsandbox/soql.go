package sfsandbox

import (
	"fmt"
	"strconv"
	"strings"
)

// This file parses the subset of SOQL the sandbox serves:
//
//	SELECT field, Rel.field, ... | COUNT() | COUNT(field)
//	FROM Object
//	[WHERE cond]   cond: field op literal | field [NOT] IN (...) |
//	               field [NOT] LIKE 'x%' | NOT cond | (cond) | cond AND/OR cond
//	[ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
//	[LIMIT n] [OFFSET n]
//
// As in Salesforce, AND and OR cannot be mixed without parentheses.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDate
	tDateTime
	tPunct
)

type token struct {
	kind tokKind
	text string // identifier/punct text, or the decoded string value
	raw  string // the source text of the token
	pos  int
}

func (t token) is(kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

func (t token) shown() string {
	if t.kind == tEOF {
		return "<EOF>"
	}
	return t.raw
}

// soqlError is a query error with the position it refers to.
type soqlError struct {
	code string
	pos  int
	msg  string
}

func (e *soqlError) Error() string { return e.code + ": " + e.msg }

// render formats the error as Salesforce does: the query line, a caret
// under the column, the row and column, and the message.
func (e *soqlError) render(q string) string {
	row, col, line := 1, 1, q
	if e.pos >= 0 && e.pos <= len(q) {
		start := strings.LastIndexByte(q[:e.pos], '\n') + 1
		row = strings.Count(q[:e.pos], "\n") + 1
		col = e.pos - start + 1
		end := strings.IndexByte(q[start:], '\n')
		if end < 0 {
			line = q[start:]
		} else {
			line = q[start : start+end]
		}
	}
	return fmt.Sprintf("\n%s\n%s^\nERROR at Row:%d:Column:%d\n%s", line, strings.Repeat(" ", col-1), row, col, e.msg)
}

func malformed(pos int, format string, args ...any) *soqlError {
	return &soqlError{code: "MALFORMED_QUERY", pos: pos, msg: fmt.Sprintf(format, args...)}
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits a query into tokens.
func lex(q string) ([]token, *soqlError) {
	var toks []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isIdentStart(c):
			j := i
			for j < len(q) && (isIdentStart(q[j]) || isDigit(q[j])) {
				j++
			}
			// Date literals with a parameter, e.g. LAST_N_DAYS:7.
			toks = append(toks, token{kind: tIdent, text: q[i:j], raw: q[i:j], pos: i})
			i = j
		case isDigit(c) || (c == '-' || c == '+') && i+1 < len(q) && isDigit(q[i+1]):
			j := i + 1
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			if j-i == 4 && j < len(q) && q[j] == '-' {
				// A date or dateTime literal: 2024-01-31 or 2024-01-31T10:00:00Z.
				for j < len(q) && (isDigit(q[j]) || strings.IndexByte("-:.TZ+", q[j]) >= 0) {
					j++
				}
				lit := q[i:j]
				if _, ok := parseTime(lit); !ok {
					return nil, malformed(i, "line 1:%d no viable alternative at character '%s'", i, lit)
				}
				kind := tDate
				if strings.Contains(lit, "T") {
					kind = tDateTime
				}
				toks = append(toks, token{kind: kind, text: lit, raw: lit, pos: i})
				i = j
				continue
			}
			if j < len(q) && q[j] == '.' {
				j++
				for j < len(q) && isDigit(q[j]) {
					j++
				}
			}
			toks = append(toks, token{kind: tNumber, text: q[i:j], raw: q[i:j], pos: i})
			i = j
		case c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(q) {
				ch := q[j]
				if ch == '\\' {
					if j+1 >= len(q) {
						break
					}
					switch e := q[j+1]; e {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					case 'b':
						b.WriteByte('\b')
					case 'f':
						b.WriteByte('\f')
					case '\'', '"', '\\':
						b.WriteByte(e)
					case '%', '_':
						// Kept escaped: only LIKE gives them meaning.
						b.WriteByte('\\')
						b.WriteByte(e)
					default:
						return nil, malformed(j, "Invalid string literal '%s'. Illegal character sequence '\\%c' in string literal.", q[i:min(j+2, len(q))], e)
					}
					j += 2
					continue
				}
				if ch == '\'' {
					closed = true
					j++
					break
				}
				b.WriteByte(ch)
				j++
			}
			if !closed {
				return nil, malformed(i, "line 1:%d mismatched character '<EOF>' expecting '''", len(q))
			}
			toks = append(toks, token{kind: tString, text: b.String(), raw: q[i:j], pos: i})
			i = j
		default:
			two := ""
			if i+1 < len(q) {
				two = q[i : i+2]
			}
			switch {
			case two == "!=" || two == "<>" || two == "<=" || two == ">=":
				toks = append(toks, token{kind: tPunct, text: two, raw: two, pos: i})
				i += 2
			case strings.IndexByte("(),=<>.:", c) >= 0:
				toks = append(toks, token{kind: tPunct, text: string(c), raw: string(c), pos: i})
				i++
			default:
				return nil, malformed(i, "line 1:%d no viable alternative at character '%c'", i, c)
			}
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(q)})
	return toks, nil
}

// fieldPath is a possibly dotted field reference such as Parent.Name.
type fieldPath struct {
	parts []string
	pos   int
}

func (p fieldPath) String() string { return strings.Join(p.parts, ".") }

// litKind is the kind of a literal value.
type litKind int

const (
	litString litKind = iota
	litNumber
	litBool
	litNull
	litDate
	litDateTime
)

type literal struct {
	kind litKind
	str  string
	num  float64
	b    bool
	pos  int
	raw  string
}

type expr interface{ exprNode() }

type boolExpr struct {
	and   bool // false: OR
	items []expr
}

type notExpr struct{ x expr }

type cmpExpr struct {
	field  fieldPath
	op     string // = != < <= > >= LIKE IN NOTIN NOTLIKE
	value  literal
	values []literal
}

func (*boolExpr) exprNode() {}
func (*notExpr) exprNode()  {}
func (*cmpExpr) exprNode()  {}

type orderItem struct {
	field      fieldPath
	desc       bool
	nullsLast  bool
	nullsGiven bool
}

// soqlQuery is a parsed query.
type soqlQuery struct {
	fields     []fieldPath
	count      bool       // COUNT()
	countField *fieldPath // COUNT(field)
	object     string
	objectPos  int
	where      expr
	orderBy    []orderItem
	limit      int // -1: none
	offset     int
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) unexpected() *soqlError {
	t := p.peek()
	return malformed(t.pos, "unexpected token: '%s'", t.shown())
}

func (p *parser) expectKw(kw string) *soqlError {
	if !p.peek().is(kw) {
		return p.unexpected()
	}
	p.next()
	return nil
}

func (p *parser) expectPunct(s string) *soqlError {
	t := p.peek()
	if t.kind != tPunct || t.text != s {
		return p.unexpected()
	}
	p.next()
	return nil
}

var reserved = map[string]bool{
	"select": true, "from": true, "where": true, "and": true, "or": true, "not": true,
	"in": true, "like": true, "order": true, "by": true, "limit": true, "offset": true,
	"asc": true, "desc": true, "nulls": true, "null": true, "true": true, "false": true,
	"group": true, "having": true, "includes": true, "excludes": true, "with": true,
}

func (p *parser) fieldPath() (fieldPath, *soqlError) {
	t := p.peek()
	if t.kind != tIdent || reserved[strings.ToLower(t.text)] {
		return fieldPath{}, p.unexpected()
	}
	p.next()
	fp := fieldPath{parts: []string{t.text}, pos: t.pos}
	for p.peek().kind == tPunct && p.peek().text == "." {
		p.next()
		n := p.peek()
		if n.kind != tIdent {
			return fieldPath{}, p.unexpected()
		}
		p.next()
		fp.parts = append(fp.parts, n.text)
	}
	return fp, nil
}

// parseSOQL parses a query. It never panics on any input.
func parseSOQL(q string) (*soqlQuery, *soqlError) {
	if strings.TrimSpace(q) == "" {
		return nil, &soqlError{code: "MALFORMED_QUERY", pos: -1, msg: "A query string has to be specified"}
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	out := &soqlQuery{limit: -1}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	if err := p.selectList(out); err != nil {
		return nil, err
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	obj := p.peek()
	if obj.kind != tIdent || reserved[strings.ToLower(obj.text)] {
		return nil, p.unexpected()
	}
	p.next()
	out.object, out.objectPos = obj.text, obj.pos
	if p.peek().is("WHERE") {
		p.next()
		w, err := p.cond()
		if err != nil {
			return nil, err
		}
		out.where = w
	}
	if p.peek().is("ORDER") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			fp, err := p.fieldPath()
			if err != nil {
				return nil, err
			}
			it := orderItem{field: fp}
			if p.peek().is("ASC") {
				p.next()
			} else if p.peek().is("DESC") {
				p.next()
				it.desc = true
			}
			if p.peek().is("NULLS") {
				p.next()
				switch {
				case p.peek().is("FIRST"):
				case p.peek().is("LAST"):
					it.nullsLast = true
				default:
					return nil, p.unexpected()
				}
				p.next()
				it.nullsGiven = true
			}
			out.orderBy = append(out.orderBy, it)
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
	if p.peek().is("OFFSET") {
		p.next()
		n, err := p.nonNegInt()
		if err != nil {
			return nil, err
		}
		out.offset = n
	}
	if p.peek().kind != tEOF {
		return nil, p.unexpected()
	}
	return out, nil
}

func (p *parser) nonNegInt() (int, *soqlError) {
	t := p.peek()
	if t.kind != tNumber {
		return 0, p.unexpected()
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 {
		return 0, p.unexpected()
	}
	p.next()
	return n, nil
}

func (p *parser) selectList(out *soqlQuery) *soqlError {
	if p.peek().is("COUNT") && p.toks[p.i+1].kind == tPunct && p.toks[p.i+1].text == "(" {
		p.next()
		p.next()
		if p.peek().kind == tPunct && p.peek().text == ")" {
			p.next()
			out.count = true
			return nil
		}
		fp, err := p.fieldPath()
		if err != nil {
			return err
		}
		if err := p.expectPunct(")"); err != nil {
			return err
		}
		out.countField = &fp
		return nil
	}
	seen := map[string]bool{}
	for {
		fp, err := p.fieldPath()
		if err != nil {
			return err
		}
		key := strings.ToLower(fp.String())
		if seen[key] {
			return malformed(fp.pos, "duplicate field selected: %s", fp.String())
		}
		seen[key] = true
		out.fields = append(out.fields, fp)
		if p.peek().kind == tPunct && p.peek().text == "," {
			p.next()
			continue
		}
		return nil
	}
}

// cond parses a condition: terms joined by only AND or only OR.
func (p *parser) cond() (expr, *soqlError) {
	first, err := p.term()
	if err != nil {
		return nil, err
	}
	var be *boolExpr
	for {
		t := p.peek()
		var isAnd bool
		switch {
		case t.is("AND"):
			isAnd = true
		case t.is("OR"):
		default:
			if be == nil {
				return first, nil
			}
			return be, nil
		}
		if be == nil {
			be = &boolExpr{and: isAnd, items: []expr{first}}
		} else if be.and != isAnd {
			return nil, p.unexpected()
		}
		p.next()
		n, err := p.term()
		if err != nil {
			return nil, err
		}
		be.items = append(be.items, n)
	}
}

func (p *parser) term() (expr, *soqlError) {
	t := p.peek()
	if t.is("NOT") {
		p.next()
		x, err := p.term()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	}
	if t.kind == tPunct && t.text == "(" {
		p.next()
		x, err := p.cond()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return x, nil
	}
	fp, err := p.fieldPath()
	if err != nil {
		return nil, err
	}
	op := p.peek()
	switch {
	case op.kind == tPunct && (op.text == "=" || op.text == "!=" || op.text == "<>" || op.text == "<" || op.text == "<=" || op.text == ">" || op.text == ">="):
		p.next()
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		o := op.text
		if o == "<>" {
			o = "!="
		}
		return &cmpExpr{field: fp, op: o, value: lit}, nil
	case op.is("LIKE"):
		p.next()
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		return &cmpExpr{field: fp, op: "LIKE", value: lit}, nil
	case op.is("IN"):
		p.next()
		vals, err := p.literalList()
		if err != nil {
			return nil, err
		}
		return &cmpExpr{field: fp, op: "IN", values: vals}, nil
	case op.is("NOT"):
		p.next()
		switch {
		case p.peek().is("IN"):
			p.next()
			vals, err := p.literalList()
			if err != nil {
				return nil, err
			}
			return &cmpExpr{field: fp, op: "NOTIN", values: vals}, nil
		case p.peek().is("LIKE"):
			p.next()
			lit, err := p.literal()
			if err != nil {
				return nil, err
			}
			return &notExpr{x: &cmpExpr{field: fp, op: "LIKE", value: lit}}, nil
		}
		return nil, p.unexpected()
	}
	return nil, p.unexpected()
}

func (p *parser) literalList() ([]literal, *soqlError) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var out []literal
	for {
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		out = append(out, lit)
		t := p.peek()
		if t.kind == tPunct && t.text == "," {
			p.next()
			continue
		}
		if t.kind == tPunct && t.text == ")" {
			p.next()
			return out, nil
		}
		return nil, p.unexpected()
	}
}

func (p *parser) literal() (literal, *soqlError) {
	t := p.peek()
	lit := literal{pos: t.pos, raw: t.raw}
	switch t.kind {
	case tString:
		lit.kind, lit.str = litString, t.text
	case tNumber:
		n, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return literal{}, p.unexpected()
		}
		lit.kind, lit.num = litNumber, n
	case tDate:
		tm, _ := parseTime(t.text)
		lit.kind, lit.str = litDate, tm.Format("2006-01-02")
	case tDateTime:
		tm, _ := parseTime(t.text)
		lit.kind, lit.str = litDateTime, formatTime(tm)
	case tIdent:
		switch {
		case t.is("null"):
			lit.kind = litNull
		case t.is("true"), t.is("false"):
			lit.kind, lit.b = litBool, t.is("true")
		case t.is("TODAY"), t.is("YESTERDAY"), t.is("TOMORROW"):
			tm := nowUTC().Truncate(24 * 60 * 60 * 1e9)
			switch {
			case t.is("YESTERDAY"):
				tm = tm.AddDate(0, 0, -1)
			case t.is("TOMORROW"):
				tm = tm.AddDate(0, 0, 1)
			}
			lit.kind, lit.str = litDate, tm.Format("2006-01-02")
		default:
			return literal{}, p.unexpected()
		}
	default:
		return literal{}, p.unexpected()
	}
	p.next()
	return lit, nil
}
