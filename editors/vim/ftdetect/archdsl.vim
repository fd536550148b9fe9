autocmd BufRead,BufNewFile *.arch setfiletype archdsl
