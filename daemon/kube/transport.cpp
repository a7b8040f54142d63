#include "nmid/kube/transport.hpp"

#include <utility>

#include "nmid/kube/line_splitter.hpp"
#include "nmid/kube/url.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::kube {

namespace asio = boost::asio;

namespace {

/// What every request to one origin carries: auth, content negotiation, identification.
class RequestFactory {
public:
    RequestFactory(std::string prefix, std::shared_ptr<TokenProvider> token, std::string user_agent)
        : prefix_{std::move(prefix)},
          token_{std::move(token)},
          user_agent_{std::move(user_agent)} {}

    [[nodiscard]] Result<net::ClientRequest> make(std::string_view target) const {
        net::ClientRequest req;
        req.target = prefix_;
        req.target.append(target);
        req.headers.reserve(3);
        req.headers.emplace_back("Accept", "application/json");
        req.headers.emplace_back("User-Agent", user_agent_);
        if (token_) {
            auto token = token_->token();
            if (!token) {
                return token.error();
            }
            req.headers.emplace_back("Authorization", "Bearer " + *token);
        }
        return req;
    }

    /// The server rejected the credentials: pick up a rotated token on the next request.
    void on_status(int status) const {
        if (status == 401 && token_) {
            token_->invalidate();
        }
    }

private:
    std::string prefix_;
    std::shared_ptr<TokenProvider> token_;
    std::string user_agent_;
};

Response to_response(net::ClientResponse&& r) {
    Response out;
    out.status = r.status;
    out.retry_after = std::string{r.header("Retry-After")};
    out.body = std::move(r.body);
    return out;
}

class HttpApiServerClient final : public ApiServerClient {
public:
    HttpApiServerClient(std::unique_ptr<net::HttpClient> http, RequestFactory requests,
                        std::size_t max_line)
        : http_{std::move(http)}, requests_{std::move(requests)}, max_line_{max_line} {}

    asio::awaitable<Result<Response>> get(std::string target, SteadyTime deadline) override {
        const Result<net::ClientRequest> req = requests_.make(target);
        co_return co_await send(req, deadline);
    }

    asio::awaitable<Result<Response>> post(std::string target, std::string body,
                                           SteadyTime deadline) override {
        Result<net::ClientRequest> req = requests_.make(target);
        if (req) {
            req->method = "POST";
            req->headers.emplace_back("Content-Type", "application/json");
            req->body = std::move(body);
        }
        co_return co_await send(req, deadline);
    }

    asio::awaitable<Result<Response>> patch(std::string target, std::string body,
                                            std::string content_type,
                                            SteadyTime deadline) override {
        Result<net::ClientRequest> req = requests_.make(target);
        if (req) {
            req->method = "PATCH";
            req->headers.emplace_back("Content-Type", std::move(content_type));
            req->body = std::move(body);
        }
        co_return co_await send(req, deadline);
    }

private:
    // `req` is the caller's, alive until this completes (the caller awaits at once).
    asio::awaitable<Result<Response>> send(const Result<net::ClientRequest>& req,
                                           SteadyTime deadline) {
        if (!req) {
            co_return req.error();
        }
        auto res = co_await http_->request(*req, deadline);
        if (!res) {
            co_return res.error();
        }
        requests_.on_status(res->status);
        co_return to_response(std::move(*res));
    }

public:
    asio::awaitable<Result<WatchResult>> watch(std::string target, SteadyTime deadline,
                                               LineHandler on_line) override {
        auto req = requests_.make(target);
        if (!req) {
            co_return req.error();
        }
        LineSplitter splitter{max_line_};
        bool too_long = false;
        bool stopped = false;
        // Named, not a temporary in the co_await expression: g++ 12 destroys those twice.
        const net::BodyHandler on_data = [&](std::string_view data) {
            switch (splitter.feed(data, on_line)) {
                case LineSplitter::Status::more:
                    return true;
                case LineSplitter::Status::stopped:
                    stopped = true;
                    return false;
                case LineSplitter::Status::too_long:
                    too_long = true;
                    return false;
            }
            return false;
        };
        auto res = co_await http_->stream(*req, deadline, on_data);
        if (too_long) {
            co_return Errc::parse_error;
        }
        if (!res) {
            co_return res.error();
        }
        requests_.on_status(res->response.status);
        WatchResult out;
        out.status = res->response.status;
        if (out.status != 200) {
            out.body = std::move(res->response.body);
            co_return out;
        }
        if (res->end == net::BodyEnd::deadline) {
            out.end = StreamEnd::deadline;
        } else if (res->end == net::BodyEnd::complete && !stopped) {
            (void)splitter.finish(on_line);  // a last event without its newline
        }
        co_return out;
    }

private:
    std::unique_ptr<net::HttpClient> http_;
    RequestFactory requests_;
    std::size_t max_line_;
};

class HttpKubeletClient final : public KubeletClient {
public:
    HttpKubeletClient(std::unique_ptr<net::HttpClient> http, RequestFactory requests)
        : http_{std::move(http)}, requests_{std::move(requests)} {}

    asio::awaitable<Result<Response>> get_pods(SteadyTime deadline) override {
        auto req = requests_.make("/pods");
        if (!req) {
            co_return req.error();
        }
        auto res = co_await http_->request(*req, deadline);
        if (!res) {
            co_return res.error();
        }
        requests_.on_status(res->status);
        co_return to_response(std::move(*res));
    }

private:
    std::unique_ptr<net::HttpClient> http_;
    RequestFactory requests_;
};

/// A client `Impl` (with `extra` constructor arguments) over an HTTP client for `url_text`,
/// with `tls` for an https URL; Errc::invalid_config with `error` naming `what` otherwise.
template <class Interface, class Impl, class Settings, class... Extra>
Result<std::unique_ptr<Interface>> make_client(const asio::any_io_executor& executor,
                                               std::string_view what, const std::string& url_text,
                                               const Settings& settings, net::TlsSettings tls,
                                               std::shared_ptr<TokenProvider> token,
                                               std::string& error, const Extra&... extra) {
    auto url = parse_url(url_text);
    if (!url) {
        error = std::string{what} + " URL \"" + url_text + "\" is not an http(s)://host[:port] URL";
        return Errc::invalid_config;
    }
    net::HttpClientSettings s;
    s.host = url->host;
    s.port = url->port;
    s.connect_timeout = settings.connect_timeout;
    s.pool_size = settings.pool_size;
    s.max_response_body = settings.max_response_body;
    if (url->tls()) {
        s.tls = std::move(tls);
        s.tls.enabled = true;
    }
    std::string why;
    auto http = net::HttpClient::create(executor, std::move(s), &why);
    if (!http) {
        error = std::string{what} + " " + url_text + ": " + why;
        return http.error();
    }
    return std::unique_ptr<Interface>{std::make_unique<Impl>(
        std::move(*http), RequestFactory{url->path, std::move(token), settings.user_agent},
        extra...)};
}

}  // namespace

Result<std::shared_ptr<TokenProvider>> make_token_provider(const KubeConfig& config,
                                                           const Clock& clock,
                                                           Seconds reread_interval,
                                                           std::string& error) {
    if (!config.token_file.empty()) {
        auto provider =
            std::make_shared<FileTokenProvider>(config.token_file, clock, reread_interval);
        if (!provider->token()) {
            error = "bearer token file " + config.token_file + " cannot be read or is empty";
            return Errc::invalid_config;
        }
        return std::shared_ptr<TokenProvider>{std::move(provider)};
    }
    if (!config.token.empty()) {
        return std::shared_ptr<TokenProvider>{std::make_shared<StaticTokenProvider>(config.token)};
    }
    return std::shared_ptr<TokenProvider>{};
}

Result<std::unique_ptr<ApiServerClient>> make_api_server_client(
    const asio::any_io_executor& executor, const KubeConfig& config, const Clock& clock,
    const ApiServerClientSettings& settings, std::string& error) {
    auto token = make_token_provider(config, clock, settings.token_reread_interval, error);
    if (!token) {
        return token.error();
    }
    return make_api_server_client(executor, config, std::move(*token), settings, error);
}

Result<std::unique_ptr<ApiServerClient>> make_api_server_client(
    const asio::any_io_executor& executor, const KubeConfig& config,
    std::shared_ptr<TokenProvider> token, const ApiServerClientSettings& settings,
    std::string& error) {
    const net::TlsSettings tls{.ca_pem = config.ca_pem,
                               .ca_file = config.ca_file,
                               .client_cert_pem = config.client_cert_pem,
                               .client_cert_file = config.client_cert_file,
                               .client_key_pem = config.client_key_pem,
                               .client_key_file = config.client_key_file,
                               .server_name = config.tls_server_name,
                               .insecure_skip_verify = config.insecure_skip_tls_verify};
    return make_client<ApiServerClient, HttpApiServerClient>(executor, "API server", config.server,
                                                             settings, tls, std::move(token), error,
                                                             settings.max_line);
}

Result<std::unique_ptr<KubeletClient>> make_kubelet_client(const asio::any_io_executor& executor,
                                                           const KubeletClientSettings& settings,
                                                           std::shared_ptr<TokenProvider> token,
                                                           std::string& error) {
    const net::TlsSettings tls{.ca_pem = settings.ca_pem,
                               .ca_file = settings.ca_file,
                               .server_name = settings.tls_server_name,
                               .insecure_skip_verify = settings.insecure_skip_tls_verify};
    return make_client<KubeletClient, HttpKubeletClient>(executor, "kubelet", settings.url,
                                                         settings, tls, std::move(token), error);
}

}  // namespace nmid::kube
