package sfsandbox

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// sfTimeLayout is how Salesforce renders dateTime values.
const sfTimeLayout = "2006-01-02T15:04:05.000-0700"

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02",
}

func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func formatTime(t time.Time) string { return t.UTC().Format(sfTimeLayout) }

func deserializeErr(typ, token string, v any) *fieldError {
	return jsonParseErr(fmt.Sprintf("Cannot deserialize instance of %s from %s value %v or request may be missing a required field", typ, token, v))
}

func jsonToken(v any) string {
	switch v.(type) {
	case string:
		return "VALUE_STRING"
	case bool:
		return "VALUE_TRUE"
	case float64:
		return "VALUE_NUMBER_INT"
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	}
	return "VALUE_NULL"
}

// coerce converts a JSON value to the field's stored form.
func coerce(f *fieldDef, v any) (any, *fieldError) {
	if v == nil {
		return nil, nil
	}
	switch f.Type {
	case "string", "textarea", "email", "phone", "url", "picklist", "combobox":
		switch x := v.(type) {
		case string:
			if x == "" {
				// Salesforce stores empty text as null.
				return nil, nil
			}
			return x, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		}
		return nil, deserializeErr("string", jsonToken(v), "{")
	case "id", "reference":
		if x, ok := v.(string); ok {
			if x == "" {
				return nil, nil
			}
			return x, nil
		}
		return nil, deserializeErr("reference", jsonToken(v), v)
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return nil, deserializeErr("boolean", jsonToken(v), v)
	case "int", "double":
		var n float64
		switch x := v.(type) {
		case float64:
			n = x
		case string:
			p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, deserializeErr(f.Type, jsonToken(v), x)
			}
			n = p
		default:
			return nil, deserializeErr(f.Type, jsonToken(v), v)
		}
		if f.Type == "int" && n != math.Trunc(n) {
			return nil, deserializeErr("int", "VALUE_NUMBER_FLOAT", n)
		}
		return n, nil
	case "date":
		if x, ok := v.(string); ok {
			if t, ok := parseTime(x); ok {
				return t.Format("2006-01-02"), nil
			}
		}
		return nil, deserializeErr("date", jsonToken(v), v)
	case "datetime":
		if x, ok := v.(string); ok {
			if t, ok := parseTime(x); ok {
				return formatTime(t), nil
			}
		}
		return nil, deserializeErr("dateTime", jsonToken(v), v)
	}
	return v, nil
}

func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n,;<>") {
		return false
	}
	domain := s[at+1:]
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

const securityHint = ". Please check the security settings of this field and verify that it is read/write for your profile or permission set."

// writeOp says what kind of write a record body is for.
type writeOp int

const (
	opCreate writeOp = iota
	opUpdate
)

// buildRecord validates body against obj and returns the record as it
// would be stored, without storing it. existing is nil for creates.
// allowed names a field that may appear in the body although it is not
// writable (the external ID field of an upsert).
func (s *Sandbox) buildRecord(tx *txn, obj *objectDef, body map[string]any, existing *record, op writeOp) (*record, *fieldError) {
	set := map[string]any{}
	var notWritable []string
	for key, raw := range body {
		if key == "attributes" {
			continue
		}
		f := obj.field(key)
		if f == nil {
			if rel := obj.relationship(key); rel != nil {
				id, err := s.resolveForeignKey(tx, rel, raw)
				if err != nil {
					return nil, err
				}
				f, raw = rel, id
			} else {
				return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", key, obj.Name))
			}
		}
		if f.Name == "Id" {
			if op == opCreate {
				return nil, recErr(http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", "Record ID: cannot specify Id in an insert call", "Id")
			}
			if s, ok := raw.(string); ok {
				if n, ok := normalizeID(s); ok && n == existing.id() {
					continue
				}
			}
			notWritable = append(notWritable, "Id")
			continue
		}
		v, err := coerce(f, raw)
		if err != nil {
			return nil, err
		}
		if (op == opCreate && !f.Createable) || (op == opUpdate && !f.Updateable) {
			notWritable = append(notWritable, f.Name)
			continue
		}
		set[f.Name] = v
	}
	if len(notWritable) > 0 {
		return nil, recErr(http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE",
			"Unable to create/update fields: "+strings.Join(notWritable, ", ")+securityHint, notWritable...)
	}

	var rec *record
	if existing == nil {
		// Null fields are absent from the map (a lookup gives nil all the
		// same); a record holds only its values, which keeps a sandbox of
		// 100,000 posts several times smaller.
		rec = &record{Object: obj.Name, Fields: map[string]any{}}
		for _, f := range obj.Fields {
			if f.Defaulted && f.Default != nil {
				rec.Fields[f.Name] = f.Default
			}
		}
	} else {
		rec = existing.clone()
	}

	// Required fields.
	var missing []string
	for _, f := range obj.Fields {
		v, given := set[f.Name]
		if f.Nillable || f.Type == "boolean" || !(f.Createable || f.Updateable) {
			continue
		}
		switch {
		case given && v == nil && !f.Restricted:
			missing = append(missing, f.Name)
		case op == opCreate && !given && !f.Defaulted && f.Createable:
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, recErr(http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
	}

	for _, f := range obj.Fields {
		v, given := set[f.Name]
		if !given {
			continue
		}
		if err := s.checkValue(tx, obj, f, v); err != nil {
			return nil, err
		}
		if v == nil {
			delete(rec.Fields, f.Name)
			continue
		}
		rec.Fields[f.Name] = v
	}
	// A restricted picklist that is required and absent on create.
	if op == opCreate {
		for _, f := range obj.Fields {
			if f.Restricted && !f.Nillable && rec.Fields[f.Name] == nil {
				return nil, recErr(http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+f.Name+"]", f.Name)
			}
		}
	}

	if err := s.checkUnique(tx, obj, rec, existing); err != nil {
		return nil, err
	}
	s.computeFields(tx, obj, rec, existing == nil)
	return rec, nil
}

// checkValue validates one coerced value.
func (s *Sandbox) checkValue(tx *txn, obj *objectDef, f *fieldDef, v any) *fieldError {
	if v == nil {
		if f.Restricted && !f.Nillable {
			return recErr(http.StatusBadRequest, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f.Label+": bad value for restricted picklist field: null", f.Name)
		}
		return nil
	}
	str, isStr := v.(string)
	if f.Restricted && isStr {
		ok := false
		for _, p := range f.Picklist {
			if p == str {
				ok = true
				break
			}
		}
		if !ok {
			return recErr(http.StatusBadRequest, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f.Label+": bad value for restricted picklist field: "+str, f.Name)
		}
	}
	if isStr && f.Length > 0 && f.Type != "reference" && f.Type != "id" && utf8.RuneCountInString(str) > f.Length {
		return recErr(http.StatusBadRequest, "STRING_TOO_LONG", fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Label, str, f.Length), f.Name)
	}
	if f.Type == "email" && isStr && str != "" && !validEmail(str) {
		return recErr(http.StatusBadRequest, "INVALID_EMAIL_ADDRESS", f.Label+": invalid email address: "+str, f.Name)
	}
	if f.Type == "reference" && isStr {
		return s.checkReference(tx, f, str)
	}
	return nil
}

// checkReference validates a reference field's ID the way Salesforce does:
// malformed, wrong object type, missing and deleted records.
func (s *Sandbox) checkReference(tx *txn, f *fieldDef, raw string) *fieldError {
	id, ok := normalizeID(raw)
	if !ok {
		return recErr(http.StatusBadRequest, "MALFORMED_ID", f.Label+": id value of incorrect type: "+raw, f.Name)
	}
	target := s.prefixes[id[:3]]
	allowed := false
	for _, t := range f.ReferenceTo {
		if target != nil && t == target.Name || t == "User" && id == sandboxUserID {
			allowed = true
		}
	}
	if f.Name == "OwnerId" || f.Name == "CreatedById" || f.Name == "LastModifiedById" {
		if id == sandboxUserID {
			return nil
		}
		return recErr(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if !allowed {
		return recErr(http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", f.Label+": id value of incorrect type: "+raw, f.Name)
	}
	r := tx.get(id)
	if r == nil {
		return recErr(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if r.deleted() {
		return recErr(http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")
	}
	return nil
}

// resolveForeignKey resolves {"attributes":{"type":"X"},"ExtField__c":"v"}
// in a relationship field to the referenced record's ID.
func (s *Sandbox) resolveForeignKey(tx *txn, rel *fieldDef, raw any) (any, *fieldError) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, deserializeErr(rel.RelationshipName, jsonToken(raw), raw)
	}
	targetName := ""
	if len(rel.ReferenceTo) == 1 {
		targetName = rel.ReferenceTo[0]
	}
	if a, ok := m["attributes"].(map[string]any); ok {
		if t, ok := a["type"].(string); ok {
			targetName = t
		}
	}
	target := s.object(targetName)
	if target == nil {
		return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", "Polymorphic foreign key "+rel.RelationshipName+" requires an attributes type", rel.Name)
	}
	for k, v := range m {
		if k == "attributes" {
			continue
		}
		f := target.field(k)
		if f == nil || !(f.ExternalID || f.IDLookup) {
			return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("Foreign key external ID field %s is not an external ID on %s", k, target.Name), rel.Name)
		}
		cv, err := coerce(f, v)
		if err != nil {
			return nil, err
		}
		var matches []*record
		if f.Name == "Id" {
			if id, ok := normalizeID(fmt.Sprint(cv)); ok {
				if r := tx.get(id); r != nil && !r.deleted() {
					matches = append(matches, r)
				}
			}
		} else {
			matches = tx.findBy(target.Name, f, cv)
		}
		switch len(matches) {
		case 0:
			return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("Foreign key external ID: %v not found for field %s in entity %s", cv, f.Name, target.Name), rel.Name)
		case 1:
			return matches[0].id(), nil
		default:
			return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("Foreign key external ID: %v matched more than one record for field %s in entity %s", cv, f.Name, target.Name), rel.Name)
		}
	}
	return nil, recErr(http.StatusBadRequest, "INVALID_FIELD", "Foreign key external ID field missing for "+rel.RelationshipName, rel.Name)
}

func (s *Sandbox) checkUnique(tx *txn, obj *objectDef, rec, existing *record) *fieldError {
	for _, f := range obj.Fields {
		if !f.Unique || !f.Custom {
			continue
		}
		v := rec.Fields[f.Name]
		if v == nil || v == "" {
			continue
		}
		for _, other := range tx.findBy(obj.Name, f, v) {
			if existing != nil && other.id() == existing.id() {
				continue
			}
			return recErr(http.StatusBadRequest, "DUPLICATE_VALUE", fmt.Sprintf("duplicate value found: %s duplicates value on record with id: %s", f.Name, other.id()))
		}
	}
	return nil
}

// computeFields fills system, formula and auto-number fields.
func (s *Sandbox) computeFields(tx *txn, obj *objectDef, rec *record, created bool) {
	now := formatTime(tx.now)
	if created {
		id, seq := tx.nextID(obj.KeyPrefix)
		rec.Seq = seq
		rec.Fields["Id"] = id
		rec.Fields["IsDeleted"] = false
		rec.Fields["CreatedDate"] = now
		rec.Fields["CreatedById"] = sandboxUserID
		if f := obj.field("OwnerId"); f != nil && rec.Fields["OwnerId"] == nil {
			rec.Fields["OwnerId"] = sandboxUserID
		}
		if obj.Name == "Case" {
			rec.Fields["CaseNumber"] = tx.nextCaseNumber()
		}
	}
	rec.Fields["LastModifiedDate"] = now
	rec.Fields["LastModifiedById"] = sandboxUserID
	rec.Fields["SystemModstamp"] = now
	switch obj.Name {
	case "Contact", "Individual":
		first, _ := rec.Fields["FirstName"].(string)
		last, _ := rec.Fields["LastName"].(string)
		rec.Fields["Name"] = strings.TrimSpace(first + " " + last)
	case "Case":
		closed := rec.Fields["Status"] == "Closed"
		if closed && rec.Fields["IsClosed"] != true {
			rec.Fields["ClosedDate"] = now
		}
		if !closed {
			delete(rec.Fields, "ClosedDate")
		}
		rec.Fields["IsClosed"] = closed
	case "Task":
		rec.Fields["IsClosed"] = rec.Fields["Status"] == "Completed"
	}
}

// deleteRecord marks a record deleted (it stays in the recycle bin, so a
// second delete answers ENTITY_IS_DELETED) and cascades to the social
// personas it is the master of, which go to the Recycle Bin with it.
func (s *Sandbox) deleteRecord(tx *txn, r *record) {
	s.deleteCascading(tx, r, "")
}

func (s *Sandbox) deleteCascading(tx *txn, r *record, cascadeOf string) {
	d := r.clone()
	d.Fields["IsDeleted"] = true
	d.Fields["LastModifiedDate"] = formatTime(tx.now)
	d.Fields["SystemModstamp"] = formatTime(tx.now)
	d.CascadeOf = cascadeOf
	tx.put(d)
	personas := s.object("SocialPersona")
	if personas == nil || personas.field("ParentId") == nil {
		return
	}
	for _, p := range tx.findBy(personas.Name, personas.field("ParentId"), r.id()) {
		if p.Fields["ParentId"] == r.id() {
			s.deleteCascading(tx, p, r.id())
		}
	}
}

// cascaded returns the records in the Recycle Bin whose delete cascaded
// from the record with the ID, and theirs in turn.
func (s *Sandbox) cascaded(tx *txn, id string) []*record {
	var out []*record
	personas := s.object("SocialPersona")
	if personas == nil {
		return nil
	}
	for _, p := range tx.all(personas.Name) {
		if p.deleted() && p.CascadeOf == id {
			out = append(out, p)
			out = append(out, s.cascaded(tx, p.id())...)
		}
	}
	return out
}

// purgeRecord removes a record in the Recycle Bin for good, with the
// records its delete cascaded to, as emptyRecycleBin() does.
func (s *Sandbox) purgeRecord(tx *txn, r *record) {
	for _, c := range s.cascaded(tx, r.id()) {
		tx.purge(c.id())
	}
	tx.purge(r.id())
}

// undeleteRecord restores a record from the Recycle Bin with the records
// its delete cascaded to, as undelete() does.
func (s *Sandbox) undeleteRecord(tx *txn, r *record) {
	for _, c := range append([]*record{r}, s.cascaded(tx, r.id())...) {
		u := c.clone()
		u.Fields["IsDeleted"] = false
		u.Fields["LastModifiedDate"] = formatTime(tx.now)
		u.Fields["SystemModstamp"] = formatTime(tx.now)
		u.CascadeOf = ""
		tx.put(u)
	}
}

// renderRecord renders a record as the REST API returns it, optionally
// limited to some fields.
func (s *Sandbox) renderRecord(version string, obj *objectDef, r *record, only []*fieldDef) *ordered {
	out := newOrdered()
	out.set("attributes", attributes(version, obj.Name, r.id()))
	fields := obj.Fields
	if only != nil {
		fields = only
	}
	for _, f := range fields {
		out.set(f.Name, r.Fields[f.Name])
	}
	return out
}

func attributes(version, object, id string) *ordered {
	a := newOrdered()
	a.set("type", object)
	a.set("url", recordURL(version, object, id))
	return a
}

func recordURL(version, object, id string) string {
	return "/services/data/" + version + "/sobjects/" + object + "/" + id
}
