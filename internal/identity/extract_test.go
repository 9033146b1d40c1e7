package identity

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// addr builds an Address for the tables.
func addr(postcode, number, addition string) Address {
	return Address{Postcode: postcode, HouseNumber: number, Addition: addition}
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Details
	}{
		// Emails.
		{"plain email nl", "Mijn e-mailadres is sanne.devries@example.nl", Details{Emails: []string{"sanne.devries@example.nl"}}},
		{"angle brackets", "Je kunt me mailen op <Sanne.deVries@Example.NL>.", Details{Emails: []string{"Sanne.deVries@example.nl"}}},
		{"trailing punctuation", "mail: jan@ziggo.nl!!", Details{Emails: []string{"jan@ziggo.nl"}}},
		{"email in parentheses with emoji", "📧 (piet_123+webcare@hotmail.com) 🙏", Details{Emails: []string{"piet_123+webcare@hotmail.com"}}},
		{"comma typo known provider", "email is jan.jansen@gmail,com", Details{Emails: []string{"jan.jansen@gmail.com"}}},
		{"comma typo with space", "mijn mail: kees@hotmail, nl", Details{Emails: []string{"kees@hotmail.nl"}}},
		{"comma typo unknown domain left alone", "email: jan@bedrijf,com", Details{}},
		{"two emails deduped case-insensitively", "privé anna@kpnmail.nl, werk anna@werk.nl en nogmaals ANNA@KPNMAIL.NL", Details{Emails: []string{"anna@kpnmail.nl", "anna@werk.nl"}}},
		{"mailto link", "stuur naar mailto:info@example.com aub", Details{Emails: []string{"info@example.com"}}},
		{"email in url is not read", "zie https://example.nl/unsubscribe?u=jan@example.nl", Details{}},
		{"no tld is no email", "mijn gmail is jan@gmail", Details{}},
		{"email with digits is not a phone", "0612345678@sms.example.nl is mijn adres", Details{Emails: []string{"0612345678@sms.example.nl"}}},
		{"english email quoted", `My email is "john.smith@outlook.com", thanks.`, Details{Emails: []string{"john.smith@outlook.com"}}},

		// Phones.
		{"mobile with dash", "Mijn nummer is 06-12345678", Details{Phones: []string{"+31612345678"}}},
		{"mobile grouped", "bel me op 06 1234 5678", Details{Phones: []string{"+31612345678"}}},
		{"mobile with (0)", "+31 (0)6 1234 5678", Details{Phones: []string{"+31612345678"}}},
		{"mobile 0031", "0031612345678", Details{Phones: []string{"+31612345678"}}},
		{"mobile +31 compact", "WhatsApp: +31612345678.", Details{Phones: []string{"+31612345678"}}},
		{"landline amsterdam", "vast nummer 020-1234567", Details{Phones: []string{"+31201234567"}}},
		{"landline in parentheses", "tel. (010) 123 45 67", Details{Phones: []string{"+31101234567"}}},
		{"all forms deduped", "06-12345678 / +31 6 12345678 / 0031612345678", Details{Phones: []string{"+31612345678"}}},
		{"two numbers in one message", "mobiel 06-12345678, werk 020 123 4567", Details{Phones: []string{"+31612345678", "+31201234567"}}},
		{"uk number", "I'm on +44 20 7946 0958 during the day", Details{Phones: []string{"+442079460958"}}},
		{"us number", "call me at +1 (415) 555-2671", Details{Phones: []string{"+14155552671"}}},
		{"belgian mobile", "mijn Belgisch nummer +32 470 12 34 56", Details{Phones: []string{"+32470123456"}}},
		{"phone with emoji", "📱06-87654321📱", Details{Phones: []string{"+31687654321"}}},
		{"dotted mobile", "06.12.34.56.78", Details{Phones: []string{"+31612345678"}}},

		// Numbers that are not phones.
		{"order number looks like mobile", "Mijn bestelnummer is 0612345678", Details{}},
		{"order number then real phone", "ordernummer 0612345678, tel 06 8765 4321", Details{Phones: []string{"+31687654321"}}},
		{"order hash", "Order #0698765432 is nog niet binnen", Details{}},
		{"tracking code", "Track & trace: 3SABC0612345678 en zending 0612345678", Details{}},
		{"tracking word then number", "trackingnummer 0687654321", Details{}},
		{"customer number", "klantnummer: 0201234567", Details{}},
		{"invoice number", "factuur 0201234567 klopt niet", Details{}},
		{"iban compact", "IBAN NL91ABNA0417164300", Details{}},
		{"iban grouped lowercase", "rekening nl91 abna 0417 1643 00 graag terugstorten", Details{}},
		{"date with dashes", "besteld op 06-12-2024 en nog niks", Details{}},
		{"iso date and time", "2024-06-12 om 10:30", Details{}},
		{"bare digits are not a phone", "code 98765432 en 123456789", Details{}},
		{"too short", "bel 06-1234", Details{}},
		{"letters glued make a code", "pakket JVGL0612345678NL", Details{}},
		{"amount", "ik heb € 1.234,56 betaald", Details{}},

		// Postcodes and house numbers.
		{"address line", "Dorpsstraat 12a, 1234 AB Utrecht", Details{Addresses: []Address{addr("1234AB", "12", "A")}}},
		{"postcode then number", "postcode 1234ab huisnummer 12-II", Details{Addresses: []Address{addr("1234AB", "12", "II")}}},
		{"postcode compact with number", "1234AB 7", Details{Addresses: []Address{addr("1234AB", "7", "")}}},
		{"number with spaced addition", "Mijn postcode is 3511 LX, nr. 12 A", Details{Addresses: []Address{addr("3511LX", "12", "A")}}},
		{"labelled number elsewhere", "huisnummer 45 en postcode 1011 AB", Details{Addresses: []Address{addr("1011AB", "45", "")}}},
		{"postcode alone", "ik woon in 9711 AA", Details{Addresses: []Address{addr("9711AA", "", "")}}},
		{"hyphen is not a postcode", "artikel 1234-AB is kapot", Details{}},
		{"year and word", "In 2024 en 2025 besteld", Details{}},
		{"unit is not a postcode", "ik heb 1500 km gereden en 2000kg", Details{}},
		{"unused letters", "1234 SS", Details{}},
		{"english address line", "My address is Kerkweg 101-3, 2011 EN Haarlem", Details{Addresses: []Address{addr("2011EN", "101", "3")}}},
		{"two addresses", "oud: Laan 1, 1000 AA Amsterdam; nieuw: Weg 2b, 2000 BB Haarlem", Details{Addresses: []Address{addr("1000AA", "1", ""), addr("2000BB", "2", "B")}}},
		{"postcode repeated with number", "1234 AB. Sorry: 1234AB 56", Details{Addresses: []Address{addr("1234AB", "56", "")}}},
		{"postcode labelled stopword letters", "postcode 2024 EN", Details{Addresses: []Address{addr("2024EN", "", "")}}},

		// Names.
		{"naam label", "Naam: Sanne de Vries", Details{Names: []string{"Sanne de Vries"}}},
		{"name label english", "Name: John O'Brien\nEmail: john@example.com", Details{Names: []string{"John O'Brien"}, Emails: []string{"john@example.com"}}},
		{"mijn naam is lowercase", "mijn naam is sanne de vries en ik wacht al weken", Details{Names: []string{"Sanne de Vries"}}},
		{"my name is", "Hi, my name is Emma Johnson and my order is late", Details{Names: []string{"Emma Johnson"}}},
		{"signature same line", "Dank voor de hulp. Groet, Sanne de Vries", Details{Names: []string{"Sanne de Vries"}}},
		{"signature next line", "Het pakket is niet aangekomen.\n\nMet vriendelijke groet,\nSanne", Details{Names: []string{"Sanne"}}},
		{"signature english", "Thanks for checking.\nKind regards,\nJ. van der Berg", Details{Names: []string{"J. van der Berg"}}},
		{"signature with emoji", "Groetjes, Fleur 😊", Details{Names: []string{"Fleur"}}},
		{"salutation is not a name", "Beste Lisa, ik wacht nog steeds.", Details{}},
		{"thanks sentence is not a name", "Thanks, I will send it tomorrow", Details{}},
		{"sent from phone is not a name", "Thanks,\nSent from my iPhone", Details{}},
		{"company name label skipped", "company name: Acme Holding", Details{}},
		{"title dropped", "Met vriendelijke groet,\nDhr. P. Jansen", Details{Names: []string{"P. Jansen"}}},
		{"gebruikersnaam is not a name", "gebruikersnaam: Sannetje88", Details{}},

		// Everything at once.
		{
			"full dm nl",
			"Hoi! Hierbij mijn gegevens 🙂\nNaam: Sanne de Vries\nE-mail: <sanne@example.nl>\nTel: 06-12345678\nAdres: Dorpsstraat 12a, 1234 AB Utrecht\nBestelnummer 0687654321\n\nGroet,\nSanne",
			Details{
				Emails:    []string{"sanne@example.nl"},
				Phones:    []string{"+31612345678"},
				Addresses: []Address{addr("1234AB", "12", "A")},
				Names:     []string{"Sanne de Vries", "Sanne"},
			},
		},
		{
			"full dm en",
			"Hello, my name is Tom Baker. Order 1234567890 never arrived. You can reach me at tom.baker@example.co.uk or +44 7911 123456. Cheers, Tom",
			Details{
				Emails: []string{"tom.baker@example.co.uk"},
				Phones: []string{"+447911123456"},
				Names:  []string{"Tom Baker", "Tom"},
			},
		},
		{
			"typo spacing",
			"mijn nummer:06 -12345678 ,postcode:1234ab nr 3",
			Details{Phones: []string{"+31612345678"}, Addresses: []Address{addr("1234AB", "3", "")}},
		},
		{"empty", "", Details{}},
		{"only emoji", "👍👍👍", Details{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Extract(tt.text, Options{DefaultRegion: "NL"})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Extract(%q)\n got  %+v\n want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestExtractDefaultRegion(t *testing.T) {
	// A Belgian mobile in national format reads differently per region.
	if got := Extract("0470 12 34 56", Options{DefaultRegion: "BE"}).Phones; !reflect.DeepEqual(got, []string{"+32470123456"}) {
		t.Errorf("BE: got %v", got)
	}
	if got := Extract("0470 12 34 56", Options{}).Phones; len(got) != 0 {
		t.Errorf("NL default: got %v, want none", got)
	}
}

func TestExtractLongInputIsBounded(t *testing.T) {
	text := strings.Repeat("1 ", 100000) + "06-12345678"
	got := Extract(text, Options{})
	if len(got.Phones) != 0 {
		t.Errorf("read past the input bound: %v", got.Phones)
	}
	got = Extract("06-12345678 "+strings.Repeat("1 ", 100000), Options{})
	if !reflect.DeepEqual(got.Phones, []string{"+31612345678"}) {
		t.Errorf("got %v", got.Phones)
	}
}

// checkDetails asserts the invariants every extraction must hold.
func checkDetails(t *testing.T, d Details) {
	t.Helper()
	for _, p := range d.Phones {
		num, err := phonenumbers.Parse(p, "")
		if err != nil || !phonenumbers.IsValidNumber(num) || phonenumbers.Format(num, phonenumbers.E164) != p {
			t.Fatalf("phone %q is not valid E.164", p)
		}
	}
	for _, a := range d.Addresses {
		if !PostcodeRE.MatchString(a.Postcode) {
			t.Fatalf("postcode %q is not in Dutch format", a.Postcode)
		}
	}
	for _, e := range d.Emails {
		at := strings.LastIndexByte(e, '@')
		if at <= 0 || strings.ToLower(e[at:]) != e[at:] {
			t.Fatalf("email %q is not an address with a lowercase domain", e)
		}
	}
}

func FuzzExtract(f *testing.F) {
	seeds := []string{
		"Mijn nummer is 06-12345678 en mail <Jan@Example.NL>.",
		"+31 (0)6 1234 5678 of 0031612345678, vast 020-1234567",
		"bestelnummer 0612345678, tel 06 1234 5678",
		"Dorpsstraat 12a, 1234 AB Utrecht",
		"postcode 1234ab huisnummer 12-II",
		"Met vriendelijke groet,\nSanne de Vries",
		"mijn naam is sanne de vries en ik",
		"jan@gmail,com",
		"IBAN NL91 ABNA 0417 1643 00 op 12-03-2024",
		"+44 20 7946 0958 +1 (415) 555-2671",
		"((((+++0000 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5",
		"1234 AB 12 - / - a",
		"Groet,\n\n\n",
		"naam:",
		"\xff\xfe06-12345678\x00",
		"06\u00a01234\u00a05678 📱",
	}
	// Inputs that once took seconds: many postcodes, long digit runs.
	seeds = append(seeds,
		strings.Repeat("1234AB ", 300),
		strings.Repeat("Straat 1, 1234 EN ", 100),
		strings.Repeat("0 ", 800),
		"Naam: A."+strings.Repeat("B", 1000),
	)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d := Extract(text, Options{})
		checkDetails(t, d)
	})
}

func BenchmarkExtract(b *testing.B) {
	text := "Hoi! Hierbij mijn gegevens 🙂\nNaam: Sanne de Vries\nE-mail: <sanne@example.nl>\nTel: 06-12345678 of +31 (0)20 123 4567\nAdres: Dorpsstraat 12a, 1234 AB Utrecht\nBestelnummer 0687654321, besteld op 12-03-2024\n\nMet vriendelijke groet,\nSanne"
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Extract(text, Options{})
	}
}
