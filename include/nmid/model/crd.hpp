#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nmid {

/// Common object metadata of the aadpodidentity.k8s.io/v1 kinds.
struct ObjectMeta {
    std::string namespace_name;
    std::string name;
    std::string uid;
    std::string resource_version;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;

    friend bool operator==(const ObjectMeta&, const ObjectMeta&) = default;
};

/// `spec.type` of an AzureIdentity.
enum class IdentityType : int {
    user_assigned_msi = 0,
    service_principal = 1,
    service_principal_certificate = 2,
};

struct SecretRef {
    std::string namespace_name;
    std::string name;
    friend bool operator==(const SecretRef&, const SecretRef&) = default;
};

/// AzureIdentity (`azureidentities`).
struct AzureIdentity {
    ObjectMeta meta;
    int type = 0;  ///< raw `spec.type`; see IdentityType (other values are unsupported)
    std::string resource_id;
    std::string client_id;
    std::string object_id;  ///< not in aad-pod-identity's schema; nmid reads `spec.objectID` if set
    SecretRef client_password;
    std::string tenant_id;
    std::vector<std::string> auxiliary_tenant_ids;
    std::string ad_endpoint;  ///< "" means https://login.microsoftonline.com/

    friend bool operator==(const AzureIdentity&, const AzureIdentity&) = default;
};

/// AzureIdentityBinding (`azureidentitybindings`).
struct AzureIdentityBinding {
    ObjectMeta meta;
    std::string azure_identity;  ///< name of an AzureIdentity
    std::string selector;        ///< compared with the pod label `aadpodidbinding`
    int weight = 0;              ///< unused, as in NMI

    friend bool operator==(const AzureIdentityBinding&, const AzureIdentityBinding&) = default;
};

/// AzurePodIdentityException (`azurepodidentityexceptions`).
struct AzurePodIdentityException {
    ObjectMeta meta;
    std::map<std::string, std::string> pod_labels;

    friend bool operator==(const AzurePodIdentityException&,
                           const AzurePodIdentityException&) = default;
};

/// AzureAssignedIdentity (`azureassignedidentities`), written by MIC; standard mode only.
struct AzureAssignedIdentity {
    ObjectMeta meta;
    AzureIdentity identity_ref;  ///< spec.azureIdentityRef (embedded)
    AzureIdentityBinding binding_ref;
    std::string pod;
    std::string pod_namespace;
    std::string node_name;
    std::string status;  ///< "", Created, Assigned, Unassigned

    friend bool operator==(const AzureAssignedIdentity&, const AzureAssignedIdentity&) = default;
};

/// Everything the resolver reads, as one immutable value. Sources publish a new snapshot
/// (`std::shared_ptr<const CrdSnapshot>`) on every change; readers never lock.
/// Vectors are sorted by (namespace, name) so every decision is deterministic.
struct CrdSnapshot {
    std::vector<AzureIdentity> identities;
    std::vector<AzureIdentityBinding> bindings;
    std::vector<AzurePodIdentityException> exceptions;
    std::vector<AzureAssignedIdentity> assigned;
};

using CrdSnapshotPtr = std::shared_ptr<const CrdSnapshot>;

}  // namespace nmid
