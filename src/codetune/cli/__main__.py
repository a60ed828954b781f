from codetune.cli import main

main()
