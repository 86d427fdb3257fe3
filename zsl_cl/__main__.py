from zsl_cl.cli import main

main()
