// The search tree: an arena of nodes indexed by dense ids (mctx-style), never pointers.
// Step texts, token ids and per-token statistics (log-probabilities, entropies) live in
// shared buffers; a node holds spans into them.
// Node 0 is the root (the prompt; no step). Nodes are only ever appended.
#pragma once

#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/types.hpp"
#include "qstar/error.hpp"

namespace qstar {

/// One node of the tree. Plain data: algorithms read and write the fields directly.
struct Node {
  NodeId parent = kNoNode;        ///< kNoNode for the root
  NodeId first_child = kNoNode;   ///< first attached child (insertion order)
  NodeId last_child = kNoNode;    ///< last attached child
  NodeId next_sibling = kNoNode;  ///< next attached sibling
  std::int32_t num_children = 0;  ///< attached children
  std::int32_t depth = 0;         ///< steps from the root (root: 0)
  std::uint32_t text_offset = 0, text_size = 0;    ///< span into Tree's text buffer
  std::uint32_t token_offset = 0, token_size = 0;  ///< span into Tree's token buffer
  /// Spans into Tree's per-token statistics buffer: token_logprobs at stat_offset, then
  /// token_entropies (each empty when the step had none).
  std::uint32_t stat_offset = 0, logprob_size = 0, entropy_size = 0;
  std::int32_t num_tokens = 0;    ///< token count of the step
  double logprob = 0.0;           ///< summed log-probability of the step
  double score = std::numeric_limits<double>::quiet_NaN();  ///< per-step verifier score
  double prior = 0.0;             ///< selection prior P(s,a) (MCTS)
  double value = std::numeric_limits<double>::quiet_NaN();  ///< leaf evaluation (MCTS)
  std::int32_t visits = 0;        ///< N(s,a), virtual losses included while in flight
  double value_sum = 0.0;         ///< W(s,a), virtual losses included while in flight
  double value_max = -std::numeric_limits<double>::infinity();  ///< for max backup
  std::int32_t virtual_loss = 0;  ///< virtual visits currently applied
  std::int32_t expansions = 0;    ///< expansion requests made from this node (seeds)
  std::int32_t answer = -1;       ///< index into Tree's answers, -1 if none
  FinishReason finish = FinishReason::None;  ///< why the step ended
  bool terminal = false;          ///< the trajectory ends here
  bool detached = false;          ///< a rollout/lookahead node: has a parent, is no child
  bool pruned = false;            ///< created, then dropped (budget); never used

  bool scored() const noexcept { return !std::isnan(score); }
  double q() const noexcept { return visits > 0 ? value_sum / visits : 0.0; }
};

class Tree;

/// A view of the trajectory root -> node: the ids of its steps, never copies of them.
/// Valid while the tree lives (appending nodes keeps it valid).
class TrajectoryView {
 public:
  TrajectoryView() = default;
  TrajectoryView(const Tree& tree, NodeId leaf);

  const Tree& tree() const noexcept { return *tree_; }
  NodeId leaf() const noexcept { return leaf_; }
  /// Number of steps (the root is not a step).
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// Node id of step i (0-based from the first step).
  NodeId node(std::size_t i) const noexcept { return data()[i]; }
  std::span<const NodeId> nodes() const noexcept { return {data(), size_}; }
  std::string_view text(std::size_t i) const;
  std::span<const TokenId> tokens(std::size_t i) const;
  std::span<const float> token_logprobs(std::size_t i) const;
  std::span<const float> token_entropies(std::size_t i) const;
  const Node& step(std::size_t i) const;
  /// The step texts joined by `delimiter` (a copy; for display and plug-ins that want it).
  std::string joined(std::string_view delimiter = "\n") const;

 private:
  // Paths up to kInline steps live inline (no allocation per request); longer ones spill.
  static constexpr std::size_t kInline = 14;
  const NodeId* data() const noexcept { return size_ <= kInline ? inline_ : heap_.data(); }
  const Tree* tree_ = nullptr;
  NodeId leaf_ = kNoNode;
  std::size_t size_ = 0;
  NodeId inline_[kInline] = {};
  std::vector<NodeId> heap_;
};

class Tree {
 public:
  Tree() { clear(); }

  /// Removes every node but a fresh root.
  void clear() {
    nodes_.clear();
    text_.clear();
    tokens_.clear();
    stats_.clear();
    answers_.clear();
    nodes_.emplace_back();
  }
  void reserve(std::size_t nodes, std::size_t text_bytes = 0) {
    nodes_.reserve(nodes);
    text_.reserve(text_bytes);
  }

  static constexpr NodeId root() noexcept { return 0; }
  std::size_t size() const noexcept { return nodes_.size(); }
  Node& operator[](NodeId id) noexcept { return nodes_[static_cast<std::size_t>(id)]; }
  const Node& operator[](NodeId id) const noexcept { return nodes_[static_cast<std::size_t>(id)]; }
  bool valid(NodeId id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < nodes_.size();
  }

  /// Appends a child of `parent` holding `step`. Detached children (rollouts, lookahead)
  /// know their parent but are not listed among its children.
  NodeId add_child(NodeId parent, const Step& step, bool detached = false) {
    if (!valid(parent)) throw InvalidArgument("Tree::add_child: parent id out of range");
    if (nodes_.size() >= static_cast<std::size_t>(std::numeric_limits<NodeId>::max()))
      throw Error("Tree::add_child: node id space exhausted");
    const auto id = static_cast<NodeId>(nodes_.size());
    Node n;
    n.parent = parent;
    n.depth = nodes_[static_cast<std::size_t>(parent)].depth + 1;
    n.text_offset = static_cast<std::uint32_t>(text_.size());
    n.text_size = static_cast<std::uint32_t>(step.text.size());
    text_.append(step.text);
    n.token_offset = static_cast<std::uint32_t>(tokens_.size());
    n.token_size = static_cast<std::uint32_t>(step.tokens.size());
    tokens_.insert(tokens_.end(), step.tokens.begin(), step.tokens.end());
    n.stat_offset = static_cast<std::uint32_t>(stats_.size());
    n.logprob_size = static_cast<std::uint32_t>(step.token_logprobs.size());
    n.entropy_size = static_cast<std::uint32_t>(step.token_entropies.size());
    stats_.insert(stats_.end(), step.token_logprobs.begin(), step.token_logprobs.end());
    stats_.insert(stats_.end(), step.token_entropies.begin(), step.token_entropies.end());
    n.num_tokens = step.num_tokens;
    n.logprob = step.logprob;
    n.finish = step.finish;
    n.terminal = generator_stopped(step.finish);  // otherwise the Task decides (the engine asks it)
    n.detached = detached;
    nodes_.push_back(n);
    if (!detached) {
      Node& p = nodes_[static_cast<std::size_t>(parent)];
      if (p.last_child == kNoNode) {
        p.first_child = id;
      } else {
        nodes_[static_cast<std::size_t>(p.last_child)].next_sibling = id;
      }
      p.last_child = id;
      ++p.num_children;
    }
    return id;
  }

  std::string_view text(NodeId id) const {
    const Node& n = (*this)[id];
    return std::string_view(text_).substr(n.text_offset, n.text_size);
  }
  std::span<const TokenId> tokens(NodeId id) const {
    const Node& n = (*this)[id];
    return std::span<const TokenId>(tokens_).subspan(n.token_offset, n.token_size);
  }
  /// The step's Step::token_logprobs (empty when it had none).
  std::span<const float> token_logprobs(NodeId id) const {
    const Node& n = (*this)[id];
    return std::span<const float>(stats_).subspan(n.stat_offset, n.logprob_size);
  }
  /// The step's Step::token_entropies (empty when it had none).
  std::span<const float> token_entropies(NodeId id) const {
    const Node& n = (*this)[id];
    return std::span<const float>(stats_).subspan(n.stat_offset + n.logprob_size, n.entropy_size);
  }

  void set_answer(NodeId id, std::string answer) {
    Node& n = (*this)[id];
    if (n.answer >= 0) {
      answers_[static_cast<std::size_t>(n.answer)] = std::move(answer);
    } else {
      n.answer = static_cast<std::int32_t>(answers_.size());
      answers_.push_back(std::move(answer));
    }
  }
  std::optional<std::string_view> answer(NodeId id) const {
    const Node& n = (*this)[id];
    if (n.answer < 0) return std::nullopt;
    return std::string_view(answers_[static_cast<std::size_t>(n.answer)]);
  }

  /// Forward range over the attached children of a node, in insertion order.
  class ChildRange {
   public:
    class iterator {
     public:
      using value_type = NodeId;
      using difference_type = std::ptrdiff_t;
      iterator() = default;
      iterator(const Tree* t, NodeId id) : t_(t), id_(id) {}
      NodeId operator*() const noexcept { return id_; }
      iterator& operator++() noexcept {
        id_ = (*t_)[id_].next_sibling;
        return *this;
      }
      iterator operator++(int) noexcept {
        auto c = *this;
        ++*this;
        return c;
      }
      bool operator==(const iterator& o) const noexcept { return id_ == o.id_; }

     private:
      const Tree* t_ = nullptr;
      NodeId id_ = kNoNode;
    };
    ChildRange(const Tree* t, NodeId first) : t_(t), first_(first) {}
    iterator begin() const { return {t_, first_}; }
    iterator end() const { return {t_, kNoNode}; }

   private:
    const Tree* t_;
    NodeId first_;
  };
  ChildRange children(NodeId id) const { return {this, (*this)[id].first_child}; }

  TrajectoryView trajectory(NodeId leaf) const { return TrajectoryView(*this, leaf); }

  std::span<const Node> nodes() const noexcept { return nodes_; }

 private:
  std::vector<Node> nodes_;
  std::string text_;
  std::vector<TokenId> tokens_;
  std::vector<float> stats_;  // per node: its token_logprobs, then its token_entropies
  std::vector<std::string> answers_;
};

inline TrajectoryView::TrajectoryView(const Tree& tree, NodeId leaf) : tree_(&tree), leaf_(leaf) {
  const auto depth = static_cast<std::size_t>(tree[leaf].depth);
  size_ = depth;
  NodeId* out = inline_;
  if (depth > kInline) {
    heap_.resize(depth);
    out = heap_.data();
  }
  NodeId cur = leaf;
  for (std::size_t i = depth; i > 0; --i) {
    out[i - 1] = cur;
    cur = tree[cur].parent;
  }
}
inline std::string_view TrajectoryView::text(std::size_t i) const { return tree_->text(node(i)); }
inline std::span<const TokenId> TrajectoryView::tokens(std::size_t i) const {
  return tree_->tokens(node(i));
}
inline std::span<const float> TrajectoryView::token_logprobs(std::size_t i) const {
  return tree_->token_logprobs(node(i));
}
inline std::span<const float> TrajectoryView::token_entropies(std::size_t i) const {
  return tree_->token_entropies(node(i));
}
inline const Node& TrajectoryView::step(std::size_t i) const { return (*tree_)[node(i)]; }
inline std::string TrajectoryView::joined(std::string_view delimiter) const {
  std::string out;
  for (std::size_t i = 0; i < size_; ++i) {
    if (i) out.append(delimiter);
    out.append(text(i));
  }
  return out;
}

}  // namespace qstar
