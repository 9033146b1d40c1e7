package mappings

// standardFields lists the standard fields of the Salesforce objects a
// mapping may write, from the Salesforce Object Reference. A mapping that
// names a field outside this list (and outside its custom_fields) is
// rejected by config check before anything is written. ValidateAgainstDescribe
// checks against a live org instead.
var standardFields = map[string][]string{
	"SocialPersona": {
		"Id", "Name", "ParentId", "Provider", "ExternalId", "ExternalPictureURL",
		"RealName", "ProfileUrl", "ProfileType", "Bio", "AreWeFollowing",
		"AuthorLabels", "Followers", "Following", "InfluencerScore",
		"IsBlacklisted", "IsDefault", "IsFollowingUs", "IsVerified",
		"ListedCount", "MediaProvider", "MediaType", "NumberOfFriends",
		"NumberOfTweets", "R6SourceId", "SourceApp", "TopicType",
		"CreatedById", "CreatedDate", "LastModifiedById", "LastModifiedDate",
	},
	"SocialPost": {
		"Id", "Name", "Content", "Provider", "MessageType", "Handle", "Headline",
		"PostUrl", "Posted", "IsOutbound", "ExternalPostId", "PersonaId",
		"ParentId", "WhoId", "WhatId", "ReplyToId", "Status", "StatusMessage",
		"AnalyzerScore", "AssignedTo", "AttachmentType", "AttachmentUrl",
		"Classification", "CommentCount", "DeletedById", "EngagementLevel",
		"HarvestDate", "HiddenById", "InboundLinkCount", "KeywordGroupName",
		"Language", "LikedBy", "LikesAndVotes", "MediaProvider", "MediaType",
		"Notes", "OutboundSocialAccountId", "OwnerId", "PostPriority",
		"PostTags", "R6PostId", "R6SourceId", "R6TopicId", "Recipient",
		"RecipientType", "ResponseContextExternalId", "ReviewedStatus",
		"ReviewScale", "ReviewScore", "Sentiment", "Shares", "SpamRating",
		"ThreadSize", "TopicProfileName", "TopicType", "TruncatedContent",
		"UniqueCommentors", "ViewCount", "CreatedById", "CreatedDate",
		"LastModifiedById", "LastModifiedDate",
	},
	"Case": {
		"Id", "Subject", "Origin", "Status", "Description", "ContactId",
		"AccountId", "Priority", "Type", "Reason", "ParentId", "OwnerId",
		"SuppliedName", "SuppliedEmail", "SuppliedPhone", "SuppliedCompany",
		"IsClosed", "ClosedDate", "IsEscalated", "CaseNumber", "Comments",
		"Language", "SourceId", "AssetId", "ContactEmail", "ContactPhone",
		"ContactMobile", "ContactFax", "CreatedById", "CreatedDate",
		"LastModifiedById", "LastModifiedDate",
	},
	"Contact": {
		"Id", "FirstName", "LastName", "Salutation", "Name", "Email", "Phone",
		"MobilePhone", "HomePhone", "OtherPhone", "Fax", "MailingStreet",
		"MailingCity", "MailingState", "MailingPostalCode", "MailingCountry",
		"OtherStreet", "OtherCity", "OtherState", "OtherPostalCode",
		"OtherCountry", "AccountId", "Title", "Department", "Birthdate",
		"Description", "LeadSource", "IndividualId", "HasOptedOutOfEmail",
		"DoNotCall", "OwnerId", "ReportsToId", "AssistantName",
		"AssistantPhone", "CreatedById", "CreatedDate", "LastModifiedById",
		"LastModifiedDate",
	},
	"Individual": {
		"Id", "FirstName", "LastName", "Salutation", "Name", "ShouldForget",
		"HasOptedOutProcessing", "HasOptedOutProfiling", "HasOptedOutTracking",
		"HasOptedOutSolicit", "SendIndividualData", "CanStorePiiElsewhere",
		"BirthDate", "IndividualsAge", "OwnerId",
	},
	"Task": {
		"Id", "Subject", "Status", "Priority", "Description", "WhoId", "WhatId",
		"ActivityDate", "OwnerId", "Type", "TaskSubtype", "CallType",
	},
}

// KnownField reports whether field is a standard field of sobject, as far
// as the built-in list knows. Custom fields are checked separately.
func KnownField(sobject, field string) bool {
	for _, f := range standardFields[sobject] {
		if f == field {
			return true
		}
	}
	return false
}
