// Text formats of GRL training (docs/method.md §1), as the reference's ULLMECollator builds them
// (ullme/data_modules/ullme_datasets.py).
//
// Contrastive side (bidirectional encode pass):
//   query, positive and negative are ALL formatted with the query format `{instruction}\n{text}`
//   (the collator's `formater`; its `candidate_formater` `{instruction}\nCandidate:\n{text}` is defined
//   but never used in training). The candidate format is the evaluation/encode format only. We keep this
//   asymmetry on purpose. With an empty instruction the string is "\n{text}", as in the reference.
//
// Generative side (causal pass with the LM head), `gen_example_format`:
//   "{alignment_instruction}. Query:\n{query}\n\n{passage}\n"
//   - the QUERY comes first and the passage (a positive or negative) after it, even though the default
//     alignment instruction speaks of the "above passage";
//   - the alignment instruction already ends in '.', so the text reads "...above passage.. Query:" (two
//     dots) — reproduced exactly;
//   - the query and passage are the raw texts (no dataset instruction, no query format);
//   - tokenised as one string: BOS as the tokenizer adds it, truncation to max_seq_length (so a long
//     passage is cut from the end), no EOS appended (the text ends in "\n"), right padding in the batch;
//   - labels = input_ids with padding set to -100, i.e. the labels cover EVERY non-padding token
//     (BOS, the alignment instruction and the query included, not only the passage); the causal shift is
//     done by the loss (logits[:-1] vs labels[1:]).
//   - which instruction: "Please write a query that can be used to retrieve above passage." for every
//     data set except those the reference lists as query-to-passage, which use
//     "Please write a passage that can be used to answer above query." (same layout, query still first).
//   - rows per example: the P positives' generation examples then the N negatives'; sft uses only the
//     first P, the preference losses take chosen = row 0 (first positive) and rejected = row P (first
//     negative).

public enum GRLTextFormat {
    /// The reference's default alignment instruction (passage-to-query data sets).
    public static let passageToQueryInstruction = "Please write a query that can be used to retrieve above passage."
    /// The alignment instruction of the reference's query-to-passage data sets.
    public static let queryToPassageInstruction = "Please write a passage that can be used to answer above query."

    /// `{instruction}\n{text}`: the training format of queries, positives and negatives alike, and the
    /// evaluation format of queries.
    public static func query(instruction: String, text: String) -> String {
        instruction + "\n" + text
    }

    /// `{instruction}\nCandidate:\n{text}`: the evaluation/encode format of corpus documents (not used
    /// in training; see the file header).
    public static func candidate(instruction: String, text: String) -> String {
        instruction + "\nCandidate:\n" + text
    }

    /// The training format of any contrastive text (query, positive or negative): the query format.
    public static func training(instruction: String, text: String) -> String {
        query(instruction: instruction, text: text)
    }

    /// `{alignment_instruction}. Query:\n{query}\n\n{passage}\n`; its labels cover every non-padding token.
    public static func generationExample(alignmentInstruction: String, query: String, passage: String) -> String {
        alignmentInstruction + ". Query:\n" + query + "\n\n" + passage + "\n"
    }
}

/// How positives and negatives are formatted for the contrastive pass (YAML `passage_format`).
public enum PassageFormat: String, Sendable, Equatable, CaseIterable {
    /// `{instruction}\n{text}` like the query: the reference's training format.
    case query
    /// `{instruction}\nCandidate:\n{text}`: the format `encode_corpus` embeds documents in, so a model
    /// trained this way sees its documents at evaluation exactly as in training.
    case candidate
}

extension GRLBatchExample {
    /// The formatted contrastive texts of this example in the reference's row order:
    /// query, the P positives, the N negatives (all in the query format).
    public var contrastiveTexts: [String] { contrastiveTexts(passageFormat: .query) }

    /// The contrastive texts with the passages (positives, negatives) in `passageFormat`.
    public func contrastiveTexts(passageFormat: PassageFormat) -> [String] {
        let passage: (String) -> String = passageFormat == .query
            ? { GRLTextFormat.training(instruction: instruction, text: $0) }
            : { GRLTextFormat.candidate(instruction: instruction, text: $0) }
        return [GRLTextFormat.training(instruction: instruction, text: query)]
            + positives.map(passage) + negatives.map(passage)
    }

    /// The generation examples of this example: the P positives' then the N negatives'.
    public var generationTexts: [String] {
        (positives + negatives).map {
            GRLTextFormat.generationExample(alignmentInstruction: alignmentInstruction, query: query, passage: $0)
        }
    }
}
