package salesforce

import (
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// phoneForms returns the spellings under which a Contact's Phone or
// MobilePhone may hold the number e164. Salesforce keeps a phone as it was
// typed (it reformats only ten-digit numbers, for US and Canadian users),
// and SOQL compares strings exactly, so a lookup by phone asks for each
// likely spelling: E.164 (+31612345678), with 00 or without the plus
// (0031612345678, 31612345678), international with spaces, hyphens or
// "(0)" (+31 6 12345678, +31-6-12345678, +31 (0)6 12345678), national with
// spaces, hyphens or neither (06 12345678, 06-12345678, 0612345678,
// (06) 12345678) and the subscriber number in blocks of four or in pairs
// (06 1234 5678, 06 12 34 56 78). Other spellings are not found. The
// caller normalises the numbers it gets back before it compares them.
func phoneForms(e164 string) []string {
	var forms []string
	seen := map[string]bool{}
	add := func(f string) {
		if f = strings.TrimSpace(f); f != "" && !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	add(e164)
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return forms
	}
	cc := strconv.Itoa(int(num.GetCountryCode()))
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	add("+" + cc + nsn)
	add("00" + cc + nsn)
	add(cc + nsn)

	intl := phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	rest := strings.TrimSpace(strings.TrimPrefix(intl, "+"+cc))
	add(intl)
	add("+" + cc + " " + nsn)
	add("+" + cc + "-" + strings.ReplaceAll(rest, " ", "-"))
	add("00" + cc + " " + rest)

	national := phonenumbers.Format(num, phonenumbers.NATIONAL)
	groups := digitGroups(national)
	all := strings.Join(groups, "")
	add(national)
	add(all)
	if strings.HasPrefix(all, "0") && !strings.HasPrefix(nsn, "0") {
		// The trunk prefix in brackets: +31 (0)6 12345678.
		add("+" + cc + " (0)" + rest)
		add("+" + cc + " (0)" + nsn)
	}
	if len(groups) < 2 {
		return forms
	}
	area, sub := groups[0], strings.Join(groups[1:], "")
	add(strings.Join(groups, " "))
	add(strings.Join(groups, "-"))
	add(area + " " + sub)
	add(area + "-" + sub)
	add("(" + area + ") " + sub)
	if len(sub) == 8 {
		add(area + " " + sub[:4] + " " + sub[4:])
		add(area + "-" + sub[:4] + " " + sub[4:])
	}
	if len(sub)%2 == 0 {
		var pairs []string
		for i := 0; i < len(sub); i += 2 {
			pairs = append(pairs, sub[i:i+2])
		}
		add(area + " " + strings.Join(pairs, " "))
	}
	return forms
}

// digitGroups splits s into its runs of digits: "(020) 123-4567" gives
// 020, 123 and 4567.
func digitGroups(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}
