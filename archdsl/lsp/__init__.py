"""`archdsl lsp`: a language server for spec files (pygls on stdio).

The analysis and each feature are plain functions over an `Analysis` (no pygls in them):

    analysis.analyse(...)   -> Analysis   parse, resolve `use`, expand, check; what is where in the text
    diagnostics             -> Diagnostic  every error and warning `archdsl check` gives, at its range
    hover, completion, definition, symbols, inlay, actions       one feature each
    server                  the pygls server: documents, the analysis worker, the handlers

Nothing here imports torch; `server` alone imports pygls.
"""
