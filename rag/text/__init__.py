"""Text: sentences and chunks with exact offsets, the word rules (stemming, stop words), question forms and answer
types, the language of a question, and the vocabulary an index knows."""
