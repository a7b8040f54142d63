// DEPS: nmid_pods
// PodIndex::find() on a node with 250 pods: the per-request cost of mapping a source IP.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "nmid/pods/pod_index.hpp"

namespace {

namespace asio = boost::asio;

nmid::PodList make_pods(int count) {
    nmid::PodList list;
    for (int i = 0; i < count; ++i) {
        nmid::PodInfo pod;
        pod.namespace_name = "team-" + std::to_string(i % 7);
        pod.name = "app-" + std::to_string(i) + "-7d9f6c5b8-x2k4p";
        pod.uid = "uid-" + std::to_string(i);
        pod.phase = "Running";
        pod.labels = {{"aadpodidbinding", "reader"}, {"app", pod.name}};
        pod.ips.push_back("10.244.0." + std::to_string(i + 2));
        list.pods.push_back(std::move(pod));
    }
    return list;
}

// Serves a fixed list; alternates between two equal lists on demand (forces a rebuild).
class StaticSource final : public nmid::PodSource {
public:
    StaticSource()
        : a_(std::make_shared<const nmid::PodList>(make_pods(250))),
          b_(std::make_shared<const nmid::PodList>(make_pods(250))) {}
    void flip() { use_b_ = !use_b_; }
    asio::awaitable<nmid::Result<std::shared_ptr<const nmid::PodList>>> list(
        nmid::SteadyTime /*deadline*/) override {
        co_return use_b_ ? b_ : a_;
    }

private:
    std::shared_ptr<const nmid::PodList> a_;
    std::shared_ptr<const nmid::PodList> b_;
    bool use_b_ = false;
};

struct Fixture {
    Fixture() : index(ioc.get_executor(), source, clock, nmid::PodSettings{}) { refresh(); }
    void refresh() {
        asio::co_spawn(ioc, index.refresh(), asio::detached);
        ioc.restart();
        ioc.run();
    }
    asio::io_context ioc;
    nmid::SystemClock clock;
    StaticSource source;
    nmid::PodIndex index;
};

std::vector<asio::ip::address> addresses(const char* prefix, int count) {
    std::vector<asio::ip::address> out;
    out.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        out.push_back(asio::ip::make_address(prefix + std::to_string(i + 2)));
    }
    return out;
}

void BM_FindHit(benchmark::State& state) {
    Fixture f;
    const auto ips = addresses("10.244.0.", 250);
    if (!f.index.find(ips[0])) {
        state.SkipWithError("index not populated");
        return;
    }
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = f.index.find(ips[i++ % ips.size()]);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_FindHit);

void BM_FindHitIpv4Mapped(benchmark::State& state) {
    Fixture f;
    const auto ips = addresses("::ffff:10.244.0.", 250);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = f.index.find(ips[i++ % ips.size()]);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_FindHitIpv4Mapped);

void BM_FindMiss(benchmark::State& state) {
    Fixture f;
    const auto ips = addresses("10.245.0.", 250);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = f.index.find(ips[i++ % ips.size()]);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_FindMiss);

// One refresh that brings a new list: snapshot rebuild for 250 pods (plus a co_spawn).
void BM_RefreshRebuild250(benchmark::State& state) {
    Fixture f;
    for (auto _ : state) {
        f.source.flip();
        f.refresh();
    }
}
BENCHMARK(BM_RefreshRebuild250)->Unit(benchmark::kMicrosecond);

// One refresh where the source returns the same pointer: no rebuild.
void BM_RefreshUnchanged(benchmark::State& state) {
    Fixture f;
    for (auto _ : state) {
        f.refresh();
    }
}
BENCHMARK(BM_RefreshUnchanged)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
