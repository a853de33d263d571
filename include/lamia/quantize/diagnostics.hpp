#pragma once
// Diagnostics of semantic IDs, as JSON (definitions in docs/quantize.md):
//   positions[j]: codebook_size k_j, used codes, utilisation = used / k_j,
//     entropy H_j = -sum_c p_c ln p_c (nats) of the code distribution, perplexity = exp(H_j),
//     largest_cluster_share = max_c p_c;
//   table: num_items, unique_codes (distinct L-code tuples), collision_rate = 1 - unique_codes / n
//     (share of items that needed an index token other than 0), colliding_items (items in groups
//     of size > 1), max_group_size, and per prefix length l = 1..L the number of unique prefixes and
//     the mean items per prefix;
//   nmi_between_positions: L x L normalised mutual information of the codes of positions i and j,
//     ami_between_positions the same adjusted for chance (AMI), and expected_nmi_between_positions
//     NMI's chance level for clusters of those sizes (mutual_info.hpp);
//   nmi_with_labels, ami_with_labels, expected_nmi_with_labels: L x A, each position's codes
//     against each label column.
// NMI and AMI use arithmetic-mean normalisation, exactly as sklearn's normalized_mutual_info_score
// and adjusted_mutual_info_score. The float palettes have their own diagnostics
// (palette_diagnostics.hpp).
//
// Example:
//   nlohmann::json d = lamia::diagnose_codes(table.codes(), table.codebook_sizes(), aspects);
#include <lamia/quantize/mutual_info.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lamia {

/// Diagnostics of n x L codes (integer tensor). codebook_sizes has L entries (or more; extra ones are
/// ignored) or is empty (then max code + 1). labels: optional n x A integer tensor of ground-truth
/// columns (e.g. the synthetic catalog's aspects), label_names optional names for its columns.
nlohmann::json diagnose_codes(const torch::Tensor& codes, std::vector<std::int64_t> codebook_sizes = {},
                              const torch::Tensor& labels = {}, const std::vector<std::string>& label_names = {});

/// Same for a table's L codes (the index token excluded).
nlohmann::json diagnose_table(const SemanticIdTable& table, const torch::Tensor& labels = {},
                              const std::vector<std::string>& label_names = {});

}  // namespace lamia
