#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/system_error.hpp>
#include <stdexcept>
#include <string>

namespace nmid::net::detail {

namespace asio = boost::asio;
namespace ssl = asio::ssl;

namespace {

// Asio reports the OpenSSL reason in the error message; callers see what and which file.
[[noreturn]] void fail(const std::string& what, const boost::system::system_error& e) {
    throw std::invalid_argument{"TLS: " + what + ": " + e.code().message()};
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const TlsSettings& tls) {
    const bool has_cert = !tls.client_cert_pem.empty() || !tls.client_cert_file.empty();
    const bool has_key = !tls.client_key_pem.empty() || !tls.client_key_file.empty();
    if (has_cert != has_key) {
        throw std::invalid_argument{has_cert ? "TLS: client certificate given without its key"
                                             : "TLS: client key given without its certificate"};
    }
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        throw std::invalid_argument{"TLS: cannot require TLS 1.2"};
    }
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    if (tls.insecure_skip_verify) {
        ctx->set_verify_mode(ssl::verify_none);
    } else {
        ctx->set_verify_mode(ssl::verify_peer);
        if (!tls.ca_pem.empty()) {
            try {
                ctx->add_certificate_authority(asio::buffer(tls.ca_pem));
            } catch (const boost::system::system_error& e) {
                fail("cannot load the CA certificates (PEM data)", e);
            }
        }
        if (!tls.ca_file.empty()) {
            try {
                ctx->load_verify_file(tls.ca_file);
            } catch (const boost::system::system_error& e) {
                fail("cannot load the CA file " + tls.ca_file, e);
            }
        }
        if (tls.add_system_ca || (tls.ca_pem.empty() && tls.ca_file.empty())) {
            try {
                ctx->set_default_verify_paths();
            } catch (const boost::system::system_error& e) {
                fail("cannot load the system CA paths", e);
            }
        }
    }
    if (has_cert) {
        try {
            if (!tls.client_cert_pem.empty()) {
                ctx->use_certificate_chain(asio::buffer(tls.client_cert_pem));
            } else {
                ctx->use_certificate_chain_file(tls.client_cert_file);
            }
        } catch (const boost::system::system_error& e) {
            fail("cannot load the client certificate" +
                     (tls.client_cert_pem.empty() ? " " + tls.client_cert_file : std::string{}),
                 e);
        }
        try {
            if (!tls.client_key_pem.empty()) {
                ctx->use_private_key(asio::buffer(tls.client_key_pem), ssl::context::pem);
            } else {
                ctx->use_private_key_file(tls.client_key_file, ssl::context::pem);
            }
        } catch (const boost::system::system_error& e) {
            fail("cannot load the client key" +
                     (tls.client_key_pem.empty() ? " " + tls.client_key_file : std::string{}),
                 e);
        }
        if (SSL_CTX_check_private_key(native) != 1) {
            ERR_clear_error();
            throw std::invalid_argument{"TLS: the client key does not match the certificate"};
        }
    }
    return ctx;
}

}  // namespace nmid::net::detail
