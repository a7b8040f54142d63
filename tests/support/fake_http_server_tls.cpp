// The HTTPS constructor of FakeHttpServer, in its own translation unit so that tests without
// TLS link no OpenSSL.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>

#include "support/fake_http_server.hpp"
#include "support/fake_http_server_detail.hpp"

namespace nmid::test {

using namespace detail;
namespace ssl = asio::ssl;

namespace {

std::string peer_common_name(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
        return {};
    }
    std::array<char, 256> cn{};
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn.data(),
                                            static_cast<int>(cn.size()));
    return n > 0 ? std::string{cn.data(), static_cast<std::size_t>(n)} : std::string{};
}

asio::awaitable<void> tls_session(StatePtr st, std::shared_ptr<ssl::context> ctx,
                                  tcp::socket socket, std::size_t id) {
    error_code ec;
    const auto peer = socket.remote_endpoint(ec).address();
    socket.set_option(tcp::no_delay{true}, ec);
    beast::ssl_stream<beast::tcp_stream> stream{beast::tcp_stream{std::move(socket)}, *ctx};
    auto& lowest = beast::get_lowest_layer(stream);
    // Registered before the handshake, so stop() also ends a client that never completes it.
    Registration registration{*st, id, lowest};
    auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (handshake_ec) {
        ++st->tls_failures;
        close_stream(lowest, false);
        co_return;
    }
    const std::string subject = peer_common_name(stream.native_handle());
    const bool reset = co_await serve_requests(st, stream, registration, peer, subject);
    // No close_notify: the fake never waits for a peer, so tests cannot hang on one.
    close_stream(lowest, reset);
}

std::shared_ptr<ssl::context> server_context(const FakeTlsOptions& tls) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->use_certificate_chain(asio::buffer(tls.cert_pem));
    ctx->use_private_key(asio::buffer(tls.key_pem), ssl::context::pem);
    if (!tls.client_ca_pem.empty()) {
        ctx->add_certificate_authority(asio::buffer(tls.client_ca_pem));
        auto mode = ssl::verify_peer;
        if (tls.require_client_cert) {
            mode |= ssl::verify_fail_if_no_peer_cert;
        }
        ctx->set_verify_mode(mode);
    }
    return ctx;
}

}  // namespace

FakeHttpServer::FakeHttpServer(asio::io_context& ioc, Handler handler, const std::string& address,
                               const FakeTlsOptions& tls)
    : state_{std::make_shared<detail::FakeHttpServerState>(ioc)} {
    state_->handler = std::move(handler);
    auto ctx = server_context(tls);
    state_->start_session = [ctx](const StatePtr& st, tcp::socket socket, std::size_t id) {
        asio::co_spawn(st->executor, tls_session(st, ctx, std::move(socket), id), rethrow);
    };
    start_listening(state_, address);
}

}  // namespace nmid::test
