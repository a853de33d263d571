#pragma once
// lamia/ids: semantic IDs as the recommender sees them. The table (item <-> L codes + index
// token, with its prefix trie), the code-token vocabulary, and the trie as device tensors.
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/ids/trie.hpp>
