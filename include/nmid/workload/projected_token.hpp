#pragma once

// Workload identity's `projected` token source (issue 12 item 3): the token the kubelet
// already projects into the pod for Azure AD (the azwi webhook's volume), read from the node.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/core/clock.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/workload/sa_token_provider.hpp"

namespace nmid::workload {

/// Where the pod's Azure AD token file is: `<kubelet_root>/pods/<uid>/volumes/
/// kubernetes.io~projected/<volume>/<path>` for azure_projection(pod), or why there is none.
/// Hostile input (names from the pod spec): the uid must be [0-9a-f-], the volume a DNS label,
/// the path relative with non-empty segments other than "." and "..". Pure.
struct ProjectedPath {
    std::string
        volume_dir;    ///< `<kubelet_root>/pods/<uid>/volumes/kubernetes.io~projected/<volume>/`
    std::string file;  ///< volume_dir + path
};
[[nodiscard]] boost::system::result<ProjectedPath, std::string> projected_token_path(
    std::string_view kubelet_root, const PodInfo& pod);

/// `exp` and `iat` of a JWT's payload (base64url JSON), without checking its signature (the
/// kubelet wrote it; Azure AD checks it). nullopt when it is not a JWT with a numeric `exp`.
struct JwtTimes {
    std::int64_t expires_on = 0;
    std::int64_t issued_at = 0;  ///< 0 when absent
};
[[nodiscard]] std::optional<JwtTimes> jwt_times(std::string_view jwt);

struct ProjectedTokenStats {
    std::uint64_t reads = 0;   ///< files read (a changed or new file)
    std::uint64_t reused = 0;  ///< calls answered from the last read (file unchanged)
    std::uint64_t failures = 0;
};

/// Reads the projected token of a pod, again only when the file changed (its device, inode,
/// size or modification time: the kubelet swaps the file atomically through a `..data`
/// symlink when it rotates the token) or when the token held is past 80% of its life. The
/// file's real path must stay inside the volume's directory (a symlink out of it is refused);
/// at most 16 KiB are read. Errors (FetchError): upstream_refused with a text saying what is
/// missing or refused; upstream_bad_payload when the file is not a JWT or it has expired
/// (the kubelet is not rotating it). Needs no Kubernetes permission: only read access to the
/// kubelet's directory. Thread-safe; reads are small and synchronous.
class ProjectedTokenProvider final : public ServiceAccountTokenProvider {
public:
    ProjectedTokenProvider(std::string kubelet_root, Clock& clock);
    boost::asio::awaitable<SaTokenResult> token(PodInfoPtr pod, SteadyTime deadline) override;
    void retain(const std::vector<std::string>& live_uids) override;
    [[nodiscard]] ProjectedTokenStats stats() const;

    /// token() without the coroutine.
    SaTokenResult read(const PodInfo& pod);

private:
    struct Held {
        std::string file;
        std::uint64_t dev = 0, ino = 0, size = 0;
        std::int64_t mtime_ns = 0;
        ServiceAccountToken token;
    };
    std::string root_;
    Clock& clock_;
    mutable std::mutex mutex_;
    std::map<std::string, Held, std::less<>> held_;  ///< by pod uid
    ProjectedTokenStats stats_;
};

}  // namespace nmid::workload
