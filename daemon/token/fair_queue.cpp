#include "nmid/token/fair_queue.hpp"

#include <iterator>

namespace nmid {

void FairQueue::push(std::string_view requester, Id id, Priority priority) {
    Lane& lane = lane_of(requester);
    auto& list = priority == Priority::miss ? lane.misses : lane.background;
    const auto pos = list.insert(list.end(), id);
    where_.emplace(id, Where{.lane = &lane, .priority = priority, .pos = pos});
    if (!lane.in_ring) {
        // A lane that had nothing waiting takes the next turn.
        cursor_ = ring_.insert(cursor_, &lane);
        lane.ring_pos = cursor_;
        lane.in_ring = true;
    }
}

bool FairQueue::erase(Id id) {
    const auto it = where_.find(id);
    if (it == where_.end()) {
        return false;
    }
    Lane& lane = *it->second.lane;
    (it->second.priority == Priority::miss ? lane.misses : lane.background).erase(it->second.pos);
    where_.erase(it);
    settle(lane);
    return true;
}

void FairQueue::promote(Id id) {
    const auto it = where_.find(id);
    if (it == where_.end() || it->second.priority != Priority::background) {
        return;
    }
    Lane& lane = *it->second.lane;
    lane.background.erase(it->second.pos);
    it->second.priority = Priority::miss;
    it->second.pos = lane.misses.insert(lane.misses.end(), id);
}

std::optional<FairQueue::Id> FairQueue::admit() {
    if (ring_.empty()) {
        return std::nullopt;
    }
    auto it = cursor_ == ring_.end() ? ring_.begin() : cursor_;
    for (std::size_t turns = 0; turns < ring_.size(); ++turns) {
        Lane& lane = **it;
        if (may_run(lane)) {
            auto& list = lane.misses.empty() ? lane.background : lane.misses;
            const Id id = list.front();
            list.pop_front();
            where_.erase(id);
            ++lane.running;
            cursor_ = std::next(it);
            settle(lane);
            return id;
        }
        ++it;
        if (it == ring_.end()) {
            it = ring_.begin();
        }
    }
    return std::nullopt;
}

void FairQueue::finished(std::string_view requester) {
    const auto it = lanes_.find(requester);
    if (it == lanes_.end() || it->second.running == 0) {
        return;
    }
    --it->second.running;
    settle(it->second);
}

std::size_t FairQueue::waiting(std::string_view requester) const {
    const Lane* lane = find(requester);
    return lane == nullptr ? 0 : lane->misses.size() + lane->background.size();
}

std::size_t FairQueue::running(std::string_view requester) const {
    const Lane* lane = find(requester);
    return lane == nullptr ? 0 : lane->running;
}

bool FairQueue::may_run(const Lane& lane) const {
    return cap_ == 0 || lane.requester.empty() || lane.running < cap_;
}

FairQueue::Lane& FairQueue::lane_of(std::string_view requester) {
    auto it = lanes_.find(requester);
    if (it == lanes_.end()) {
        it = lanes_.emplace(std::string(requester), Lane{}).first;
        it->second.requester = it->first;
    }
    return it->second;
}

const FairQueue::Lane* FairQueue::find(std::string_view requester) const {
    const auto it = lanes_.find(requester);
    return it == lanes_.end() ? nullptr : &it->second;
}

void FairQueue::settle(Lane& lane) {
    if (lane.in_ring && lane.empty()) {
        if (cursor_ == lane.ring_pos) {
            cursor_ = std::next(cursor_);
        }
        ring_.erase(lane.ring_pos);
        lane.in_ring = false;
    }
    if (!lane.in_ring && lane.running == 0) {
        lanes_.erase(lanes_.find(lane.requester));
    }
}

}  // namespace nmid
