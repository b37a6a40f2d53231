"""The task instruction of every data set, for training (the mixture) and evaluation (the suite): one
place, so a model is evaluated with the instruction it was trained with. The training config
(experiments/configs/*.yaml) repeats them, and a test checks they agree."""

INSTRUCTIONS = {
    "debian-packages": "Given a one-line summary of a Debian package, retrieve the package's description",
    "manpages": "Given a one-line summary of a Linux manual page, retrieve the page's description",
    "manpages-other": "Given a one-line summary of a Linux manual page, retrieve the page's description",
    "info-manuals": "Given the title of a section of a GNU manual, retrieve the section's text",
    "debian-docs": "Given a section heading of a Debian manual, retrieve the section's text",
    "gcide": "Given a word or a quotation that uses it, retrieve the dictionary definition of the sense meant",
    "wordnet": "Given a sentence, retrieve the definition of the sense in which its word is used.",
    "debian-faq": "Given a question about Debian, retrieve the answer",
    "wordnet-sts": "Retrieve semantically similar text.",
    "lee": "Retrieve semantically similar text.",
}
