module ullme.example/embed

go 1.19
