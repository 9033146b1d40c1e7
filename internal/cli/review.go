package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func reviewCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "review", Short: "The identity-match review queue: matches webcaresync would not make on its own"}
	var f apiFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List reviews with their candidates and evidence (open first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(g)
			if err != nil {
				return err
			}
			var out any
			if err := c.do("GET", "/v1/reviews", nil, &out); err != nil {
				return err
			}
			printJSON(out)
			return nil
		},
	}
	f.add(list)
	var contact string
	var reject bool
	var rf apiFlags
	resolve := &cobra.Command{
		Use:   "resolve REVIEW_ID (--contact CONTACT_ID | --reject)",
		Short: "Link the persona to a contact (a candidate or another one), or reject the match",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (contact == "") == !reject {
				return errors.New("give either --contact CONTACT_ID or --reject")
			}
			c, err := rf.client(g)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if reject {
				body["reject"] = true
			} else {
				body["contact_id"] = contact
			}
			if err := c.do("POST", "/v1/reviews/"+args[0]+"/resolve", body, nil); err != nil {
				return err
			}
			fmt.Println("resolved; the conversation's workflow applies the decision")
			return nil
		},
	}
	resolve.Flags().StringVar(&contact, "contact", "", "CRM contact id to link to")
	resolve.Flags().BoolVar(&reject, "reject", false, "reject the match")
	rf.add(resolve)
	var ef apiFlags
	explain := &cobra.Command{
		Use:   "explain CONTACT_ID",
		Short: "Show every persona linked to a contact, with the evidence: rule, message, time and approver",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ef.client(g)
			if err != nil {
				return err
			}
			var out any
			if err := c.do("GET", "/v1/contacts/"+args[0]+"/links", nil, &out); err != nil {
				return err
			}
			printJSON(out)
			return nil
		},
	}
	ef.add(explain)
	var uf apiFlags
	unlink := &cobra.Command{
		Use:   "unlink CONVERSATION_ID",
		Short: "Undo a wrong link: the conversation's customer is no longer linked to the contact, in the CRM and in the identity graph",
		Long: "Unlink undoes the link of a conversation's customer to a CRM contact: the persona is parented to its post again, the " +
			"conversation's posts lose the contact, and the conversation with the details recorded from it leaves the contact's data " +
			"subject, so that an access or erasure request for the contact no longer finds it. The revoked link stays as evidence " +
			"(review explain CONTACT_ID). The conversation ids are in review list.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := uf.client(g)
			if err != nil {
				return err
			}
			if err := c.do("POST", "/v1/conversations/"+args[0]+"/unlink", nil, nil); err != nil {
				return err
			}
			fmt.Println("unlinking; the conversation's workflow applies it")
			return nil
		},
	}
	uf.add(unlink)
	cmd.AddCommand(list, resolve, explain, unlink)
	return cmd
}
