from openmer.cli.app import main

main()
