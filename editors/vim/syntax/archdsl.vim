" Vim syntax for archdsl spec files (*.arch). Keywords as grammar/archdsl.lark spells them
" (tests/test_editors.py checks that they agree); layer tokens are recognised by their shape.
if exists("b:current_syntax")
  finish
endif

syn keyword archdslStatement after block defaults input network split train use
syn keyword archdslComposite inception residual se
syn keyword archdslBoolean true false
syn match archdslLayer "\<\(soft-max\|[A-Za-z_][A-Za-z0-9_]*\)\ze\(-\|/\|(\|\s\|$\|\]\||\|>\)"
syn match archdslNumber "\<\d\+\(x\d\+\)*\>"
syn match archdslNumber "\<\d\+\.\d*\([eE][-+]\=\d\+\)\=\>"
syn match archdslTensor "@[A-Za-z_][A-Za-z0-9_]*"
syn match archdslTensor "->\s*[A-Za-z_][A-Za-z0-9_]*"
syn match archdslOption "\<[A-Za-z_][A-Za-z0-9_]*\ze\s*=[^=]"
syn region archdslString start=+"+ end=+"+ oneline
syn match archdslComment "#.*$" contains=@Spell

hi def link archdslStatement Keyword
hi def link archdslComposite Structure
hi def link archdslBoolean Boolean
hi def link archdslLayer Function
hi def link archdslNumber Number
hi def link archdslTensor Identifier
hi def link archdslOption Type
hi def link archdslString String
hi def link archdslComment Comment

let b:current_syntax = "archdsl"
