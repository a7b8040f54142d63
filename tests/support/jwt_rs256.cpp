#include "support/jwt_rs256.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "support/base64.hpp"

namespace nmid::test {
namespace {

using Md = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

}  // namespace

JwtSigner::JwtSigner(std::string kid) : kid_(std::move(kid)) {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    if (key == nullptr) {
        throw std::runtime_error("jwt signer: RSA key generation failed");
    }
    key_.reset(key, EVP_PKEY_free);
}

std::string JwtSigner::sign(std::string_view claims_json) const {
    const std::string header = nlohmann::json{{"alg", "RS256"}, {"kid", kid_}}.dump();
    const std::string input =
        base64_encode(header, true, false) + "." + base64_encode(claims_json, true, false);
    Md ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    std::size_t size = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
        throw std::runtime_error("jwt signer: sign failed");
    }
    std::vector<unsigned char> signature(size);
    if (EVP_DigestSign(ctx.get(), signature.data(), &size,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
        throw std::runtime_error("jwt signer: sign failed");
    }
    return input + "." +
           base64_encode(std::string_view{reinterpret_cast<const char*>(signature.data()), size},
                         true, false);
}

std::string JwtSigner::public_pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
        throw std::runtime_error("jwt signer: public key export failed");
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string{data, static_cast<std::size_t>(n)};
}

std::optional<std::string> verify_rs256(std::string_view jwt, std::string_view public_pem) {
    const auto first = jwt.find('.');
    const auto second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
    if (second == std::string_view::npos) {
        return std::nullopt;
    }
    const auto header = base64url_decode(jwt.substr(0, first));
    const auto claims = base64url_decode(jwt.substr(first + 1, second - first - 1));
    const auto signature = base64url_decode(jwt.substr(second + 1));
    if (!header || !claims || !signature) {
        return std::nullopt;
    }
    const auto h = nlohmann::json::parse(*header, nullptr, false);
    if (!h.is_object() || h.value("alg", "") != "RS256") {
        return std::nullopt;
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio{
        BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())), BIO_free};
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
        bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free};
    Md ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    const std::string_view input = jwt.substr(0, second);
    if (!key || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                         signature->size(), reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) != 1) {
        return std::nullopt;
    }
    return *claims;
}

}  // namespace nmid::test
