package sfsandbox

import (
	"fmt"
	"sort"
	"strings"
)

// CustomField declares a custom field (name ending in __c) on one of the
// sandbox's objects, as an org admin would in Setup.
type CustomField struct {
	// Object is the object the field belongs to, e.g. "SocialPersona".
	Object string
	// Name is the API name, which must end in "__c".
	Name string
	// Type is one of string (Text), textarea, email, phone, url, boolean
	// (Checkbox), double (Number), int, date, datetime or picklist.
	// Default: string.
	Type string
	// Length is the maximum length of text fields. Default: 255.
	Length int
	// ExternalID marks the field as an External ID (usable for upsert).
	ExternalID bool
	// Unique rejects a second record with the same value (DUPLICATE_VALUE).
	Unique bool
}

// fieldDef is one field of an object as describe reports it.
type fieldDef struct {
	Name             string
	Label            string
	Type             string
	Length           int
	Nillable         bool
	Createable       bool
	Updateable       bool
	Defaulted        bool
	Default          any
	ExternalID       bool
	IDLookup         bool
	Unique           bool
	Custom           bool
	Calculated       bool
	AutoNumber       bool
	Picklist         []string
	Restricted       bool
	ReferenceTo      []string
	RelationshipName string
}

// objectDef is one sObject type.
type objectDef struct {
	Name        string
	Label       string
	LabelPlural string
	KeyPrefix   string
	// NameField is the field shown as the record's name (Name, CaseNumber,
	// Subject).
	NameField string
	Fields    []*fieldDef
	byLower   map[string]*fieldDef
	relLower  map[string]*fieldDef
}

func (o *objectDef) field(name string) *fieldDef { return o.byLower[strings.ToLower(name)] }

// relationship returns the reference field behind a relationship name
// such as Parent or Persona.
func (o *objectDef) relationship(name string) *fieldDef { return o.relLower[strings.ToLower(name)] }

func (o *objectDef) index() {
	o.byLower = make(map[string]*fieldDef, len(o.Fields))
	o.relLower = map[string]*fieldDef{}
	for _, f := range o.Fields {
		o.byLower[strings.ToLower(f.Name)] = f
		if f.RelationshipName != "" {
			o.relLower[strings.ToLower(f.RelationshipName)] = f
		}
	}
}

// fd builds a field. props holds one letter per property: C createable,
// U updateable, N nillable, D defaulted on create, X external ID, L
// idLookup, Q unique, R restricted picklist.
func fd(name, typ string, length int, props string, label string) *fieldDef {
	f := &fieldDef{Name: name, Type: typ, Length: length, Label: label}
	if label == "" {
		f.Label = name
	}
	for _, p := range props {
		switch p {
		case 'C':
			f.Createable = true
		case 'U':
			f.Updateable = true
		case 'N':
			f.Nillable = true
		case 'D':
			f.Defaulted = true
		case 'X':
			f.ExternalID = true
		case 'L':
			f.IDLookup = true
		case 'Q':
			f.Unique = true
		case 'R':
			f.Restricted = true
		}
	}
	return f
}

func pick(f *fieldDef, def any, values ...string) *fieldDef {
	f.Picklist = values
	if def != nil {
		f.Default = def
	}
	return f
}

func ref(f *fieldDef, rel string, to ...string) *fieldDef {
	f.RelationshipName = rel
	f.ReferenceTo = to
	return f
}

func boolDef(name, label string) *fieldDef {
	f := fd(name, "boolean", 0, "CUD", label)
	f.Default = false
	return f
}

func calc(f *fieldDef) *fieldDef {
	f.Calculated = true
	return f
}

// sandboxUserID is the integration user every record is owned by.
const sandboxUserID = "0055g00000BsbxAAAR"

func systemFields(owner bool) []*fieldDef {
	fs := []*fieldDef{
		fd("Id", "id", 18, "L", "Record ID"),
		fd("IsDeleted", "boolean", 0, "D", "Deleted"),
		ref(fd("CreatedById", "reference", 18, "D", "Created By ID"), "CreatedBy", "User"),
		fd("CreatedDate", "datetime", 0, "D", "Created Date"),
		ref(fd("LastModifiedById", "reference", 18, "D", "Last Modified By ID"), "LastModifiedBy", "User"),
		fd("LastModifiedDate", "datetime", 0, "D", "Last Modified Date"),
		fd("SystemModstamp", "datetime", 0, "D", "System Modstamp"),
	}
	if owner {
		fs = append(fs, ref(fd("OwnerId", "reference", 18, "CUD", "Owner ID"), "Owner", "Group", "User"))
	}
	return fs
}

var (
	socialProviders = []string{"Facebook", "GooglePlus", "Instagram", "InstagramBusiness", "KakaoTalk", "Kik", "Klout", "Line", "LinkedIn", "Messenger", "Other", "Pinterest", "QQ", "Rypple", "SinaWeibo", "SMS", "Snapchat", "Telegram", "Twitter", "VKontakte", "WeChat", "WhatsApp", "YouTube"}
	messageTypes    = []string{"Comment", "Direct", "Post", "PrivateMessage", "Reply", "Retweet", "Tweet"}
)

// standardObjects returns fresh definitions of the objects the sandbox
// serves, following the Salesforce Object Reference.
func standardObjects() []*objectDef {
	account := &objectDef{Name: "Account", Label: "Account", LabelPlural: "Accounts", KeyPrefix: "001", NameField: "Name"}
	account.Fields = append(systemFields(true),
		fd("Name", "string", 255, "CU", "Account Name"),
		fd("AccountNumber", "string", 40, "CUN", "Account Number"),
		pick(fd("Type", "picklist", 255, "CUN", "Account Type"), nil, "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller", "Installation Partner", "Technology Partner", "Other"),
		pick(fd("Industry", "picklist", 255, "CUN", "Industry"), nil, "Agriculture", "Banking", "Communications", "Education", "Energy", "Finance", "Government", "Healthcare", "Insurance", "Media", "Retail", "Technology", "Telecommunications", "Transportation", "Utilities", "Other"),
		fd("Phone", "phone", 40, "CUN", "Account Phone"),
		fd("Website", "url", 255, "CUN", "Website"),
		fd("Description", "textarea", 32000, "CUN", "Account Description"),
		fd("BillingStreet", "textarea", 255, "CUN", "Billing Street"),
		fd("BillingCity", "string", 40, "CUN", "Billing City"),
		fd("BillingPostalCode", "string", 20, "CUN", "Billing Zip/Postal Code"),
		fd("BillingCountry", "string", 80, "CUN", "Billing Country"),
		ref(fd("ParentId", "reference", 18, "CUN", "Parent Account ID"), "Parent", "Account"),
	)

	contact := &objectDef{Name: "Contact", Label: "Contact", LabelPlural: "Contacts", KeyPrefix: "003", NameField: "Name"}
	contact.Fields = append(systemFields(true),
		pick(fd("Salutation", "picklist", 40, "CUN", "Salutation"), nil, "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
		fd("FirstName", "string", 40, "CUN", "First Name"),
		fd("LastName", "string", 80, "CU", "Last Name"),
		calc(fd("Name", "string", 121, "L", "Full Name")),
		fd("Title", "string", 128, "CUN", "Title"),
		fd("Department", "string", 80, "CUN", "Department"),
		fd("Email", "email", 80, "CUNL", "Email"),
		fd("Phone", "phone", 40, "CUN", "Business Phone"),
		fd("MobilePhone", "phone", 40, "CUN", "Mobile Phone"),
		fd("HomePhone", "phone", 40, "CUN", "Home Phone"),
		fd("OtherPhone", "phone", 40, "CUN", "Other Phone"),
		fd("MailingStreet", "textarea", 255, "CUN", "Mailing Street"),
		fd("MailingCity", "string", 40, "CUN", "Mailing City"),
		fd("MailingState", "string", 80, "CUN", "Mailing State/Province"),
		fd("MailingPostalCode", "string", 20, "CUN", "Mailing Zip/Postal Code"),
		fd("MailingCountry", "string", 80, "CUN", "Mailing Country"),
		fd("Birthdate", "date", 0, "CUN", "Birthdate"),
		fd("Description", "textarea", 32000, "CUN", "Contact Description"),
		pick(fd("LeadSource", "picklist", 255, "CUN", "Lead Source"), nil, "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
		boolDef("HasOptedOutOfEmail", "Email Opt Out"),
		boolDef("DoNotCall", "Do Not Call"),
		ref(fd("AccountId", "reference", 18, "CUN", "Account ID"), "Account", "Account"),
		ref(fd("IndividualId", "reference", 18, "CUN", "Individual ID"), "Individual", "Individual"),
	)

	cs := &objectDef{Name: "Case", Label: "Case", LabelPlural: "Cases", KeyPrefix: "500", NameField: "CaseNumber"}
	caseNumber := fd("CaseNumber", "string", 30, "DL", "Case Number")
	caseNumber.AutoNumber = true
	cs.Fields = append(systemFields(true),
		caseNumber,
		fd("Subject", "string", 255, "CUN", "Subject"),
		fd("Description", "textarea", 32000, "CUN", "Description"),
		pick(fd("Status", "picklist", 255, "CUND", "Status"), "New", "New", "Working", "Escalated", "Closed"),
		pick(fd("Origin", "picklist", 255, "CUN", "Case Origin"), nil, "Phone", "Email", "Web"),
		pick(fd("Priority", "picklist", 255, "CUND", "Priority"), "Medium", "High", "Medium", "Low"),
		pick(fd("Type", "picklist", 255, "CUN", "Case Type"), nil, "Mechanical", "Electrical", "Electronic", "Structural", "Other"),
		pick(fd("Reason", "picklist", 255, "CUN", "Case Reason"), nil, "Installation", "Equipment Complexity", "Performance", "Breakdown", "Equipment Design", "Feedback", "Other"),
		calc(fd("IsClosed", "boolean", 0, "D", "Closed")),
		fd("ClosedDate", "datetime", 0, "N", "Closed Date"),
		boolDef("IsEscalated", "Escalated"),
		fd("SuppliedName", "string", 80, "CUN", "Web Name"),
		fd("SuppliedEmail", "email", 80, "CUN", "Web Email"),
		fd("SuppliedPhone", "string", 40, "CUN", "Web Phone"),
		ref(fd("ContactId", "reference", 18, "CUN", "Contact ID"), "Contact", "Contact"),
		ref(fd("AccountId", "reference", 18, "CUN", "Account ID"), "Account", "Account"),
		ref(fd("ParentId", "reference", 18, "CUN", "Parent Case ID"), "Parent", "Case"),
	)

	task := &objectDef{Name: "Task", Label: "Task", LabelPlural: "Tasks", KeyPrefix: "00T", NameField: "Subject"}
	task.Fields = append(systemFields(true),
		fd("Subject", "combobox", 255, "CUN", "Subject"),
		pick(fd("Status", "picklist", 255, "CUD", "Status"), "Not Started", "Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"),
		pick(fd("Priority", "picklist", 255, "CUD", "Priority"), "Normal", "High", "Normal", "Low"),
		fd("ActivityDate", "date", 0, "CUN", "Due Date Only"),
		fd("Description", "textarea", 32000, "CUN", "Description"),
		pick(fd("Type", "picklist", 255, "CUN", "Type"), nil, "Call", "Email", "Meeting", "Other"),
		pick(fd("TaskSubtype", "picklist", 255, "CNR", "Task Subtype"), nil, "Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
		calc(fd("IsClosed", "boolean", 0, "D", "Closed")),
		ref(fd("WhoId", "reference", 18, "CUN", "Name ID"), "Who", "Contact", "Lead"),
		ref(fd("WhatId", "reference", 18, "CUN", "Related To ID"), "What", "Account", "Case", "SocialPost"),
	)

	individual := &objectDef{Name: "Individual", Label: "Individual", LabelPlural: "Individuals", KeyPrefix: "0PK", NameField: "Name"}
	individual.Fields = append(systemFields(true),
		pick(fd("Salutation", "picklist", 40, "CUN", "Salutation"), nil, "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
		fd("FirstName", "string", 40, "CUN", "First Name"),
		fd("LastName", "string", 80, "CU", "Last Name"),
		calc(fd("Name", "string", 121, "L", "Name")),
		fd("BirthDate", "date", 0, "CUN", "Birth Date"),
		pick(fd("IndividualsAge", "picklist", 255, "CUN", "Individual's Age"), nil, "13 or Older", "16 or Older", "Don't Know"),
		boolDef("HasOptedOutTracking", "Don't Track"),
		boolDef("HasOptedOutProfiling", "Don't Profile"),
		boolDef("HasOptedOutProcessing", "Don't Process"),
		boolDef("HasOptedOutSolicit", "Don't Market"),
		boolDef("ShouldForget", "Forget this Individual"),
		boolDef("SendIndividualData", "Export Individual's Data"),
		boolDef("CanStorePiiElsewhere", "OK to Store PII Data Elsewhere"),
	)

	persona := &objectDef{Name: "SocialPersona", Label: "Social Persona", LabelPlural: "Social Personas", KeyPrefix: "0SP", NameField: "Name"}
	persona.Fields = append(systemFields(false),
		fd("Name", "string", 255, "CU", "Social Handle"),
		pick(fd("Provider", "picklist", 255, "CR", "Social Network"), nil, socialProviders...),
		ref(fd("ParentId", "reference", 18, "CU", "Parent ID"), "Parent", "Account", "Contact", "Lead", "SocialPost"),
		fd("ExternalId", "string", 255, "CUN", "Social Persona Provider External Id"),
		fd("ExternalPictureURL", "url", 255, "CUN", "Provider External Picture URL"),
		fd("ProfileUrl", "url", 1024, "CUN", "Profile URL"),
		fd("RealName", "string", 255, "CUN", "Real Name"),
		pick(fd("ProfileType", "picklist", 255, "CUN", "Profile Type"), nil, "Person", "Organization", "Unknown"),
		fd("Bio", "textarea", 32000, "CUN", "Bio"),
		fd("Followers", "int", 9, "CUN", "Followers"),
		fd("Following", "int", 9, "CUN", "Following"),
		fd("NumberOfFriends", "int", 9, "CUN", "Number Of Friends"),
		fd("NumberOfTweets", "int", 9, "CUN", "Number of Posts"),
		fd("ListedCount", "int", 9, "CUN", "Klout Score"),
		fd("InfluencerScore", "int", 9, "CUN", "Influencer Score"),
		boolDef("IsBlacklisted", "Blocklisted"),
		boolDef("IsDefault", "Default"),
		boolDef("IsVerified", "Verified"),
		boolDef("AreWeFollowing", "Are we following"),
		boolDef("IsFollowingUs", "Is following us"),
		fd("MediaProvider", "string", 255, "CUN", "Media Provider"),
		pick(fd("MediaType", "picklist", 255, "CUN", "Media Type"), nil, "BLOG", "COMMENT", "FORUM", "IMAGE", "MAINSTREAM_NEWS", "MICROMEDIA", "SOCIAL_NETWORK", "VIDEO", "OTHER"),
		pick(fd("TopicType", "picklist", 255, "CUN", "Topic Type"), nil, "Keyword", "Managed"),
		fd("AuthorLabels", "string", 255, "CUN", "Author Labels"),
		fd("SourceApp", "string", 255, "CUN", "Source App"),
		fd("R6SourceId", "string", 18, "CUN", "Source ID"),
		fd("AvatarUrl", "string", 1024, "N", "Avatar URL"),
	)

	post := &objectDef{Name: "SocialPost", Label: "Social Post", LabelPlural: "Social Posts", KeyPrefix: "0ST", NameField: "Name"}
	post.Fields = append(systemFields(true),
		fd("Name", "string", 255, "CU", "Social Post Name"),
		fd("Content", "textarea", 32000, "CUN", "Message"),
		fd("Headline", "string", 255, "CUN", "Headline"),
		fd("Handle", "string", 255, "CUN", "Social Handle"),
		pick(fd("Provider", "picklist", 255, "CNR", "Social Network"), nil, socialProviders...),
		pick(fd("MessageType", "picklist", 255, "CUNR", "Message Type"), nil, messageTypes...),
		ref(fd("PersonaId", "reference", 18, "CUN", "Persona ID"), "Persona", "SocialPersona"),
		ref(fd("WhoId", "reference", 18, "CUN", "Who ID"), "Who", "Account", "Contact", "Lead"),
		ref(fd("ParentId", "reference", 18, "CUN", "Parent ID"), "Parent", "Case"),
		ref(fd("ReplyToId", "reference", 18, "CUN", "Reply To ID"), "ReplyTo", "SocialPost"),
		fd("Posted", "datetime", 0, "CUN", "Posted Date"),
		fd("PostUrl", "url", 1024, "CUN", "Post URL"),
		fd("ExternalPostId", "string", 255, "CUN", "External Post ID"),
		fd("R6PostId", "string", 18, "CUN", "Radian6 Post ID"),
		fd("R6SourceId", "string", 18, "CUN", "Radian6 Source ID"),
		fd("R6TopicId", "string", 18, "CUN", "Radian6 Topic ID"),
		pick(fd("Status", "picklist", 255, "CUN", "Status"), nil, "Sent", "Failed", "Pending", "Deleted", "Unsent", "Approval Pending", "Approval Rejected", "Approval Recalled"),
		fd("StatusMessage", "string", 255, "CUN", "Status Message"),
		boolDef("IsOutbound", "Outbound"),
		fd("Recipient", "string", 255, "CUN", "Recipient"),
		pick(fd("RecipientType", "picklist", 255, "CUN", "Recipient Type"), nil, "Person", "Organization", "Unknown"),
		fd("PostTags", "string", 1000, "CUN", "Post Tags"),
		pick(fd("Classification", "picklist", 255, "CUN", "Classification"), nil, "Inquiry", "Complaint", "Praise", "Other"),
		pick(fd("Language", "picklist", 255, "CUN", "Language"), nil, "English", "Dutch", "French", "German", "Spanish", "Other"),
		pick(fd("Sentiment", "picklist", 255, "CUN", "Sentiment"), nil, "Positive", "Negative", "Neutral"),
		fd("AttachmentUrl", "url", 1024, "CUN", "Attachment URL"),
		pick(fd("AttachmentType", "picklist", 255, "CUNR", "Attachment Type"), nil, "APPLICATION", "AUDIO", "IMAGE", "LINK", "TEXT", "UNKNOWN", "VIDEO"),
		fd("MediaProvider", "string", 255, "CUN", "Media Provider"),
		fd("Notes", "textarea", 32000, "CUN", "Notes"),
		fd("TopicProfileName", "string", 255, "CUN", "Social Account"),
		fd("LikesAndVotes", "int", 9, "CUN", "Likes and Votes"),
		fd("Shares", "int", 9, "CUN", "Shares"),
		fd("ThreadSize", "int", 9, "CUN", "Thread Size"),
	)

	objs := []*objectDef{account, contact, cs, task, individual, persona, post}
	for _, o := range objs {
		o.index()
	}
	return objs
}

// customType maps a CustomField type to a describe type.
func customType(t string) (string, bool) {
	switch strings.ToLower(t) {
	case "", "string", "text":
		return "string", true
	case "textarea", "longtextarea":
		return "textarea", true
	case "email":
		return "email", true
	case "phone":
		return "phone", true
	case "url":
		return "url", true
	case "boolean", "checkbox":
		return "boolean", true
	case "double", "number":
		return "double", true
	case "int":
		return "int", true
	case "date":
		return "date", true
	case "datetime":
		return "datetime", true
	case "picklist":
		return "picklist", true
	}
	return "", false
}

// addCustomFields adds the declared custom fields to the objects.
func addCustomFields(objs map[string]*objectDef, cfs []CustomField) error {
	for _, cf := range cfs {
		o := objs[strings.ToLower(cf.Object)]
		if o == nil {
			return fmt.Errorf("custom field %s: unknown object %q: use one of %s", cf.Name, cf.Object, strings.Join(objectNames(objs), ", "))
		}
		if !strings.HasSuffix(cf.Name, "__c") || len(cf.Name) < 4 || !validIdent(strings.TrimSuffix(cf.Name, "__c")) {
			return fmt.Errorf("custom field %q on %s: name must be letters, digits and underscores ending in __c", cf.Name, o.Name)
		}
		if o.field(cf.Name) != nil {
			return fmt.Errorf("custom field %s on %s: declared twice", cf.Name, o.Name)
		}
		typ, ok := customType(cf.Type)
		if !ok {
			return fmt.Errorf("custom field %s on %s: unsupported type %q", cf.Name, o.Name, cf.Type)
		}
		f := fd(cf.Name, typ, cf.Length, "CUN", strings.ReplaceAll(strings.TrimSuffix(cf.Name, "__c"), "_", " "))
		f.Custom = true
		f.ExternalID = cf.ExternalID
		f.IDLookup = cf.ExternalID
		f.Unique = cf.Unique
		switch typ {
		case "string", "email", "phone", "url", "picklist":
			if f.Length <= 0 {
				f.Length = 255
			}
		case "textarea":
			if f.Length <= 0 {
				f.Length = 32768
			}
		case "boolean":
			f.Nillable = false
			f.Defaulted = true
			f.Default = false
		default:
			f.Length = 0
		}
		o.Fields = append(o.Fields, f)
		o.index()
	}
	return nil
}

func objectNames(objs map[string]*objectDef) []string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return names
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s[0] != '_' && !(s[0] >= '0' && s[0] <= '9')
}

// soapType maps a field type to the SOAP type describe reports.
func soapType(t string) string {
	switch t {
	case "id", "reference":
		return "tns:ID"
	case "boolean":
		return "xsd:boolean"
	case "int":
		return "xsd:int"
	case "double":
		return "xsd:double"
	case "date":
		return "xsd:date"
	case "datetime":
		return "xsd:dateTime"
	}
	return "xsd:string"
}

func isTextType(t string) bool {
	switch t {
	case "string", "textarea", "email", "phone", "url", "picklist", "combobox", "id", "reference":
		return true
	}
	return false
}

// describeField renders a field as describe does.
func describeField(f *fieldDef) map[string]any {
	pv := []map[string]any{}
	for _, v := range f.Picklist {
		pv = append(pv, map[string]any{"active": true, "defaultValue": f.Default == v, "label": v, "value": v, "validFor": nil})
	}
	refTo := f.ReferenceTo
	if refTo == nil {
		refTo = []string{}
	}
	var rel any
	if f.RelationshipName != "" {
		rel = f.RelationshipName
	}
	filterable := f.filterable()
	return map[string]any{
		"name":                  f.Name,
		"label":                 f.Label,
		"type":                  f.Type,
		"soapType":              soapType(f.Type),
		"length":                f.Length,
		"nillable":              f.Nillable,
		"createable":            f.Createable,
		"updateable":            f.Updateable,
		"defaultedOnCreate":     f.Defaulted,
		"defaultValue":          f.Default,
		"externalId":            f.ExternalID,
		"idLookup":              f.IDLookup,
		"unique":                f.Unique,
		"custom":                f.Custom,
		"calculated":            f.Calculated,
		"autoNumber":            f.AutoNumber,
		"caseSensitive":         false,
		"filterable":            filterable,
		"sortable":              filterable,
		"groupable":             filterable && f.Type != "double" && f.Type != "datetime",
		"referenceTo":           refTo,
		"relationshipName":      rel,
		"polymorphicForeignKey": len(f.ReferenceTo) > 1,
		"picklistValues":        pv,
		"restrictedPicklist":    f.Restricted,
		"nameField":             false,
	}
}

// filterable reports whether SOQL may filter and sort on the field; long
// text areas cannot be.
func (f *fieldDef) filterable() bool { return !(f.Type == "textarea" && f.Length > 255) }
