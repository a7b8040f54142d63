// An unmodified azidentity (version pinned by go.mod/go.sum) driven by nmid's end-to-end client
// matrix inside a pod namespace: see ../base.py for the command line and the output line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func main() {
	mode := flag.String("mode", "mi", "mi (ManagedIdentityCredential) or default (DefaultAzureCredential)")
	clientID := flag.String("client-id", "", "user-assigned identity's client id")
	objectID := flag.String("object-id", "", "user-assigned identity's object (principal) id")
	resourceID := flag.String("resource-id", "", "user-assigned identity's ARM resource id")
	resource := flag.String("resource", "", "the resource (App ID URI) to ask a token for")
	flag.Parse()

	var cred azcore.TokenCredential
	var err error
	switch *mode {
	case "mi":
		opts := &azidentity.ManagedIdentityCredentialOptions{}
		switch {
		case *clientID != "":
			opts.ID = azidentity.ClientID(*clientID)
		case *objectID != "":
			opts.ID = azidentity.ObjectID(*objectID)
		case *resourceID != "":
			opts.ID = azidentity.ResourceID(*resourceID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(opts)
	case "default":
		// azidentity's DefaultAzureCredentialOptions has no managed-identity client id: the chain
		// reads it only from AZURE_CLIENT_ID, which the matrix never sets (base.py).
		if *clientID != "" || *objectID != "" || *resourceID != "" {
			fail(fmt.Errorf("azidentity's DefaultAzureCredential takes no identity selector (only AZURE_CLIENT_ID)"))
		}
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	default:
		err = fmt.Errorf("unknown --mode %q", *mode)
	}
	if err != nil {
		fail(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{*resource + "/.default"}})
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]any{"token": tok.Token, "expires_on": tok.ExpiresOn.Unix()})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
