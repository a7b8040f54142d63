// An unmodified com.azure:azure-identity (version pinned by ../../../../pom.xml through the Azure SDK
// BOM) driven by nmid's end-to-end client matrix inside a pod namespace: see base.py for the command
// line and the output line.
package nmid;

import com.azure.core.credential.AccessToken;
import com.azure.core.credential.TokenCredential;
import com.azure.core.credential.TokenRequestContext;
import com.azure.identity.DefaultAzureCredentialBuilder;
import com.azure.identity.ManagedIdentityCredentialBuilder;

public final class Main {
    public static void main(String[] args) {
        String mode = "mi", clientId = null, objectId = null, resourceId = null, resource = null;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--mode": mode = args[i + 1]; break;
                case "--client-id": clientId = args[i + 1]; break;
                case "--object-id": objectId = args[i + 1]; break;
                case "--resource-id": resourceId = args[i + 1]; break;
                case "--resource": resource = args[i + 1]; break;
                default: fail("unknown argument " + args[i]);
            }
        }
        if (resource == null) fail("--resource is required");
        TokenCredential credential;
        if (mode.equals("mi")) {
            ManagedIdentityCredentialBuilder b = new ManagedIdentityCredentialBuilder();
            if (clientId != null) b.clientId(clientId);
            if (objectId != null) b.objectId(objectId);
            if (resourceId != null) b.resourceId(resourceId);
            credential = b.build();
        } else if (mode.equals("default")) {
            DefaultAzureCredentialBuilder b = new DefaultAzureCredentialBuilder();
            if (clientId != null) b.managedIdentityClientId(clientId);
            if (resourceId != null) b.managedIdentityResourceId(resourceId);
            if (objectId != null) fail("DefaultAzureCredentialBuilder has no managed-identity object id");
            credential = b.build();
        } else {
            fail("unknown --mode " + mode);
            return;
        }
        try {
            AccessToken token = credential.getTokenSync(
                new TokenRequestContext().addScopes(resource + "/.default"));
            System.out.println("{\"token\": \"" + token.getToken() + "\", \"expires_on\": "
                + token.getExpiresAt().toEpochSecond() + "}");
            System.exit(0);
        } catch (RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    private static void fail(String message) {
        System.err.println(message);
        System.exit(2);
    }
}
