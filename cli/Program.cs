return Tessera.Cli.CliApp.Run(args, Console.Out, Console.Error);
