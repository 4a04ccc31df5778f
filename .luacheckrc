std = "luajit"
max_line_length = 140
files["spec/**/*.lua"] = { std = "+busted", globals = { "support" } }
files["spec/helper.lua"] = { globals = { "support" } }
exclude_files = { "build*/**" }
