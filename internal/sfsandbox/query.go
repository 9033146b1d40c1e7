package sfsandbox

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const (
	defaultBatchSize = 2000
	minBatchSize     = 200
	maxOffset        = 2000
	maxCursors       = 500
)

// cursor holds the rest of a query's results for nextRecordsUrl paging.
type cursor struct {
	records   []any
	total     int
	batchSize int
}

// resolvedPath is a field path checked against the schema.
type resolvedPath struct {
	path  fieldPath
	steps []*fieldDef // reference fields walked through
	leaf  *fieldDef   // nil for a polymorphic "Name" leaf
	name  string      // canonical name of the leaf
	poly  bool        // the last relationship is polymorphic or to User
}

// polyFields are the fields of Salesforce's Name object, which is what a
// polymorphic relationship (Who, What, Owner, Parent on SocialPersona)
// exposes.
var polyFields = map[string]string{"id": "Id", "name": "Name", "type": "Type", "firstname": "FirstName", "lastname": "LastName", "email": "Email", "phone": "Phone", "title": "Title"}

func invalidField(pos int, name, object string) *soqlError {
	return &soqlError{code: "INVALID_FIELD", pos: pos, msg: fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, object)}
}

// resolvePath checks a path such as Parent.Name against obj.
func (s *Sandbox) resolvePath(obj *objectDef, fp fieldPath) (*resolvedPath, *soqlError) {
	rp := &resolvedPath{path: fp}
	cur := obj
	parts := fp.parts
	// A path may start with the object's own name: Contact.Name.
	if len(parts) > 1 && strings.EqualFold(parts[0], obj.Name) && obj.relationship(parts[0]) == nil {
		parts = parts[1:]
	}
	for i, part := range parts {
		last := i == len(parts)-1
		if rp.poly {
			if !last {
				return nil, &soqlError{code: "INVALID_FIELD", pos: fp.pos, msg: fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", part)}
			}
			name, ok := polyFields[strings.ToLower(part)]
			if !ok {
				return nil, invalidField(fp.pos, part, "Name")
			}
			rp.name = name
			return rp, nil
		}
		if last {
			f := cur.field(part)
			if f == nil {
				return nil, invalidField(fp.pos, part, cur.Name)
			}
			rp.leaf, rp.name = f, f.Name
			return rp, nil
		}
		rel := cur.relationship(part)
		if rel == nil {
			return nil, &soqlError{code: "INVALID_FIELD", pos: fp.pos, msg: fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", part)}
		}
		rp.steps = append(rp.steps, rel)
		if len(rel.ReferenceTo) == 1 && s.object(rel.ReferenceTo[0]) != nil {
			cur = s.object(rel.ReferenceTo[0])
		} else {
			rp.poly = true
		}
	}
	return rp, nil
}

// polyName renders a record as Salesforce's Name object.
func (s *Sandbox) polyValue(r *record, field string) any {
	if r == nil {
		return nil
	}
	obj := s.object(r.Object)
	switch field {
	case "Id":
		return r.id()
	case "Type":
		return r.Object
	case "Name":
		return r.Fields[obj.NameField]
	}
	return r.Fields[field]
}

// target follows the reference steps from r.
func (s *Sandbox) target(tx *txn, r *record, steps []*fieldDef) *record {
	cur := r
	for _, st := range steps {
		if cur == nil {
			return nil
		}
		id, _ := cur.Fields[st.Name].(string)
		if id == "" {
			return nil
		}
		if id == sandboxUserID {
			return sandboxUser()
		}
		cur = tx.get(id)
		if cur != nil && cur.deleted() {
			return nil
		}
	}
	return cur
}

func sandboxUser() *record {
	return &record{Object: "User", Fields: map[string]any{"Id": sandboxUserID, "Name": "Sandbox Integration User", "FirstName": "Sandbox", "LastName": "Integration User"}}
}

func (s *Sandbox) valueOf(tx *txn, r *record, rp *resolvedPath) any {
	t := s.target(tx, r, rp.steps)
	if t == nil {
		return nil
	}
	if rp.poly {
		if t.Object == "User" {
			if rp.name == "Type" {
				return "User"
			}
			return t.Fields[rp.name]
		}
		return s.polyValue(t, rp.name)
	}
	return t.Fields[rp.name]
}

type compiledCmp struct {
	cmp *cmpExpr
	rp  *resolvedPath
}

// checkFilter validates the types of a WHERE clause's literals.
func (s *Sandbox) checkFilter(obj *objectDef, e expr, cmps map[*cmpExpr]*resolvedPath) *soqlError {
	switch x := e.(type) {
	case *boolExpr:
		for _, it := range x.items {
			if err := s.checkFilter(obj, it, cmps); err != nil {
				return err
			}
		}
	case *notExpr:
		return s.checkFilter(obj, x.x, cmps)
	case *cmpExpr:
		rp, err := s.resolvePath(obj, x.field)
		if err != nil {
			return err
		}
		if rp.leaf != nil && !rp.leaf.filterable() {
			return &soqlError{code: "INVALID_FIELD", pos: x.field.pos, msg: fmt.Sprintf("field '%s' can not be filtered in a query call", rp.name)}
		}
		typ := "string"
		if rp.leaf != nil {
			typ = rp.leaf.Type
		} else if rp.name == "Id" {
			typ = "id"
		}
		if x.op != "IN" && x.op != "NOTIN" {
			if err := checkLiteral(rp.name, typ, x.op, &x.value); err != nil {
				return err
			}
		}
		for i := range x.values {
			if err := checkLiteral(rp.name, typ, x.op, &x.values[i]); err != nil {
				return err
			}
		}
		cmps[x] = rp
	}
	return nil
}

func checkLiteral(name, typ, op string, l *literal) *soqlError {
	if l.kind == litNull {
		if op == "LIKE" {
			return &soqlError{code: "INVALID_FIELD", pos: l.pos, msg: fmt.Sprintf("value of filter criterion for field '%s' must be of type string and should be enclosed in quotes", name)}
		}
		return nil
	}
	bad := func(want string, quoted bool) *soqlError {
		q := "should not be enclosed in quotes"
		if quoted {
			q = "should be enclosed in quotes"
		}
		return &soqlError{code: "INVALID_FIELD", pos: l.pos, msg: fmt.Sprintf("value of filter criterion for field '%s' must be of type %s and %s", name, want, q)}
	}
	switch typ {
	case "boolean":
		if l.kind != litBool {
			return bad("boolean", false)
		}
	case "int", "double":
		if l.kind != litNumber {
			return bad("double", false)
		}
	case "date":
		if l.kind != litDate {
			return bad("date", false)
		}
	case "datetime":
		if l.kind == litDate && !isDigit(l.raw[0]) {
			tm, _ := parseTime(l.str)
			l.kind, l.str = litDateTime, formatTime(tm)
		}
		if l.kind != litDateTime {
			return bad("dateTime", false)
		}
	case "id", "reference":
		if l.kind != litString {
			return bad("string", true)
		}
		if op != "LIKE" {
			id, ok := normalizeID(l.str)
			if !ok {
				return &soqlError{code: "INVALID_QUERY_FILTER_OPERATOR", pos: l.pos, msg: "invalid ID field: " + l.str}
			}
			l.str = id
		}
	default:
		if l.kind != litString {
			return bad("string", true)
		}
	}
	return nil
}

func compareValues(a any, l literal) (int, bool) {
	switch l.kind {
	case litNumber:
		f, ok := a.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case f < l.num:
			return -1, true
		case f > l.num:
			return 1, true
		}
		return 0, true
	case litBool:
		b, ok := a.(bool)
		if !ok {
			return 0, false
		}
		if b == l.b {
			return 0, true
		}
		if !b {
			return -1, true
		}
		return 1, true
	}
	str, ok := a.(string)
	if !ok {
		return 0, false
	}
	return strings.Compare(strings.ToLower(str), strings.ToLower(l.str)), true
}

func likeRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteString(regexp.QuoteMeta(string(pattern[i])))
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func unescapeLike(s string) string {
	return strings.NewReplacer(`\%`, "%", `\_`, "_").Replace(s)
}

func (s *Sandbox) match(tx *txn, r *record, e expr, cmps map[*cmpExpr]*resolvedPath) bool {
	switch x := e.(type) {
	case *boolExpr:
		for _, it := range x.items {
			m := s.match(tx, r, it, cmps)
			if x.and && !m {
				return false
			}
			if !x.and && m {
				return true
			}
		}
		return x.and
	case *notExpr:
		return !s.match(tx, r, x.x, cmps)
	case *cmpExpr:
		v := s.valueOf(tx, r, cmps[x])
		switch x.op {
		case "IN", "NOTIN":
			found := false
			for _, l := range x.values {
				if l.kind == litNull {
					if v == nil {
						found = true
					}
					continue
				}
				if c, ok := compareValues(v, unescaped(l)); ok && c == 0 {
					found = true
				}
			}
			return found == (x.op == "IN")
		case "LIKE":
			str, ok := v.(string)
			return ok && likeRegexp(x.value.str).MatchString(str)
		}
		if x.value.kind == litNull {
			switch x.op {
			case "=":
				return v == nil
			case "!=":
				return v != nil
			}
			return false
		}
		if v == nil {
			return x.op == "!="
		}
		c, ok := compareValues(v, unescaped(x.value))
		if !ok {
			return x.op == "!="
		}
		switch x.op {
		case "=":
			return c == 0
		case "!=":
			return c != 0
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		case ">=":
			return c >= 0
		}
	}
	return false
}

func unescaped(l literal) literal {
	if l.kind == litString {
		l.str = unescapeLike(l.str)
	}
	return l
}

// queryError renders a soqlError as the API's error body.
func queryError(q string, e *soqlError) *fieldError {
	msg := e.msg
	if e.pos >= 0 {
		msg = e.render(q)
	}
	return plainErr(http.StatusBadRequest, e.code, msg)
}

// runQuery parses, validates and runs a SOQL query and returns the
// rendered records and the total size.
func (s *Sandbox) runQuery(tx *txn, version, q string, all bool) ([]any, int, *fieldError) {
	parsed, perr := parseSOQL(q)
	if perr != nil {
		return nil, 0, queryError(q, perr)
	}
	obj := s.object(parsed.object)
	if obj == nil {
		return nil, 0, queryError(q, &soqlError{code: "INVALID_TYPE", pos: parsed.objectPos, msg: fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", parsed.object)})
	}
	var selects []*resolvedPath
	for _, fp := range parsed.fields {
		rp, err := s.resolvePath(obj, fp)
		if err != nil {
			return nil, 0, queryError(q, err)
		}
		selects = append(selects, rp)
	}
	var countPath *resolvedPath
	if parsed.countField != nil {
		rp, err := s.resolvePath(obj, *parsed.countField)
		if err != nil {
			return nil, 0, queryError(q, err)
		}
		countPath = rp
	}
	cmps := map[*cmpExpr]*resolvedPath{}
	if parsed.where != nil {
		if err := s.checkFilter(obj, parsed.where, cmps); err != nil {
			return nil, 0, queryError(q, err)
		}
	}
	var orders []*resolvedPath
	for _, o := range parsed.orderBy {
		rp, err := s.resolvePath(obj, o.field)
		if err != nil {
			return nil, 0, queryError(q, err)
		}
		if rp.leaf != nil && !rp.leaf.filterable() {
			return nil, 0, queryError(q, &soqlError{code: "INVALID_FIELD", pos: o.field.pos, msg: fmt.Sprintf("field '%s' can not be sorted in a query call", rp.name)})
		}
		orders = append(orders, rp)
	}
	if parsed.offset > maxOffset {
		return nil, 0, plainErr(http.StatusBadRequest, "NUMBER_OUTSIDE_VALID_RANGE", fmt.Sprintf("Maximum SOQL offset allowed is %d", maxOffset))
	}

	source := tx.live(obj.Name)
	if all {
		source = tx.all(obj.Name)
	}
	var rows []*record
	for _, r := range source {
		if parsed.where == nil || s.match(tx, r, parsed.where, cmps) {
			rows = append(rows, r)
		}
	}
	if len(orders) > 0 {
		sort.SliceStable(rows, func(i, j int) bool {
			for k, o := range parsed.orderBy {
				a, b := s.valueOf(tx, rows[i], orders[k]), s.valueOf(tx, rows[j], orders[k])
				c := compareAny(a, b, o.nullsLast)
				if o.desc && a != nil && b != nil {
					c = -c
				}
				if c != 0 {
					return c < 0
				}
			}
			return false
		})
	}
	if parsed.offset > 0 {
		rows = rows[min(parsed.offset, len(rows)):]
	}
	if parsed.limit >= 0 && len(rows) > parsed.limit {
		rows = rows[:parsed.limit]
	}
	if parsed.count {
		return []any{}, len(rows), nil
	}
	if countPath != nil {
		n := 0
		for _, r := range rows {
			if s.valueOf(tx, r, countPath) != nil {
				n++
			}
		}
		agg := newOrdered()
		a := newOrdered()
		a.set("type", "AggregateResult")
		agg.set("attributes", a)
		agg.set("expr0", n)
		return []any{agg}, 1, nil
	}
	out := make([]any, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.renderRow(tx, version, obj, r, selects))
	}
	return out, len(out), nil
}

// compareAny orders two field values; nulls sort first unless nullsLast.
func compareAny(a, b any, nullsLast bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		if nullsLast {
			return 1
		}
		return -1
	case b == nil:
		if nullsLast {
			return -1
		}
		return 1
	}
	switch x := a.(type) {
	case float64:
		y, _ := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y, _ := b.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	}
	return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
}

// renderRow renders one query result row, nesting relationship fields
// under their relationship name as Salesforce does.
func (s *Sandbox) renderRow(tx *txn, version string, obj *objectDef, r *record, selects []*resolvedPath) *ordered {
	row := newOrdered()
	row.set("attributes", attributes(version, obj.Name, r.id()))
	for _, rp := range selects {
		cur := row
		rec := r
		nilParent := false
		for i, st := range rp.steps {
			rec = s.target(tx, rec, []*fieldDef{st})
			if rec == nil {
				if _, ok := cur.get(st.RelationshipName); !ok {
					cur.set(st.RelationshipName, nil)
				}
				nilParent = true
				break
			}
			existing, ok := cur.get(st.RelationshipName)
			child, isMap := existing.(*ordered)
			if !ok || !isMap {
				child = newOrdered()
				typ := rec.Object
				if rp.poly && i == len(rp.steps)-1 {
					typ = "Name"
				}
				a := newOrdered()
				a.set("type", typ)
				a.set("url", recordURL(version, rec.Object, rec.id()))
				child.set("attributes", a)
				cur.set(st.RelationshipName, child)
			}
			cur = child
		}
		if nilParent {
			continue
		}
		if rp.poly {
			if rec.Object == "User" {
				cur.set(rp.name, rec.Fields[rp.name])
			} else {
				cur.set(rp.name, s.polyValue(rec, rp.name))
			}
			continue
		}
		cur.set(rp.name, rec.Fields[rp.name])
	}
	return row
}

func batchSize(r *http.Request) int {
	opts := r.Header.Get("Sforce-Query-Options")
	for _, part := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "batchSize") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		return min(max(n, minBatchSize), defaultBatchSize)
	}
	return defaultBatchSize
}

// serveQuery is GET /query?q= (and /queryAll).
func (s *Sandbox) serveQuery(w http.ResponseWriter, r *http.Request, all bool) {
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		writeErr(w, plainErr(http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified"))
		return
	}
	tx, _, done := s.st.begin(r.Context())
	rows, total, err := s.runQuery(tx, apiVersion(r), q, all)
	done()
	if err != nil {
		writeErr(w, err)
		return
	}
	s.writePage(w, r, &cursor{records: rows, total: total, batchSize: batchSize(r)}, "", 0)
}

// writePage answers one page of results starting at offset, registering a
// cursor when more remain.
func (s *Sandbox) writePage(w http.ResponseWriter, r *http.Request, c *cursor, locator string, offset int) {
	end := min(offset+c.batchSize, len(c.records))
	out := newOrdered()
	out.set("totalSize", c.total)
	out.set("done", end >= len(c.records))
	if end < len(c.records) {
		if locator == "" {
			locator = s.saveCursor(c)
		}
		out.set("nextRecordsUrl", fmt.Sprintf("/services/data/%s/query/%s-%d", apiVersion(r), locator, end))
	}
	out.set("records", c.records[offset:end])
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) saveCursor(c *cursor) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursorSeq++
	loc := newID("01g", s.cursorSeq)
	s.cursors[loc] = c
	s.cursorOrder = append(s.cursorOrder, loc)
	if len(s.cursorOrder) > maxCursors {
		delete(s.cursors, s.cursorOrder[0])
		s.cursorOrder = s.cursorOrder[1:]
	}
	return loc
}

// serveQueryMore is GET /query/{locator}-{offset}.
func (s *Sandbox) serveQueryMore(w http.ResponseWriter, r *http.Request, raw string) {
	bad := plainErr(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
	loc, offStr, ok := strings.Cut(raw, "-")
	if !ok {
		writeErr(w, bad)
		return
	}
	off, err := strconv.Atoi(offStr)
	s.mu.Lock()
	c := s.cursors[loc]
	s.mu.Unlock()
	if err != nil || c == nil || off < 0 || off >= len(c.records) {
		writeErr(w, bad)
		return
	}
	s.writePage(w, r, c, loc, off)
}
