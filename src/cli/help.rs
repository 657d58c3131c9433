//! EXAMPLES sections for every command's `--help`, and shell completions.
//! The examples live in one table so a test can check that no command lacks
//! them; they are attached to the clap command tree when it is built.

use clap::{Command, CommandFactory};

/// `(command path, examples)`; the path is the subcommand names after `flowctl`.
const EXAMPLES: &[(&str, &str)] = &[
    ("", "  flowctl serve                                   # start the server on 127.0.0.1:3000
  flowctl apply examples/                         # register the definitions of a folder
  flowctl run wf_order_total -i @order.json --wait
  flowctl runs list --status failed"),
    ("serve", "  flowctl serve
  flowctl serve --listen 0.0.0.0:8080 --db /var/lib/flowctl/flowctl.db
  flowctl serve --database-url postgres://flowctl@db/flowctl --log-format json"),
    ("apply", "  flowctl apply order-total.json
  flowctl apply workflows/                        # every *.json, all or nothing
  flowctl apply workflows/ --json"),
    ("validate", "  flowctl validate order-total.json
  flowctl validate workflows/ --json              # problems and warnings as JSON on stdout
  flowctl validate workflows/ --strict            # warnings (e.g. a reference a branch may leave unset) fail too"),
    ("test", "  flowctl test workflows/                         # every *.test.json below the folder
  flowctl test workflows/order_total.test.json --json
  flowctl test workflows/ --update                # write actual results as expectations; review with git diff"),
    ("simulate", "  flowctl simulate workflows/invoice_by_amount.json --runs 20
  flowctl simulate new-order.json --run run_2x8Kq3zVb7LmN1pQ --run run_9hT4cWq2Lm0aXy7B
  flowctl simulate new-order.json --runs 50 --json | jq '.replays[] | select(.changed) | .runId'"),
    ("run", "  flowctl run wf_order_total                       # prints the run id
  flowctl run wf_order_total -i '{\"items\": []}' --wait --timeout 60
  flowctl run wf_order_total -i @- --wait < order.json
  flowctl run wf_nightly_report --as-schedule --wait   # as the schedule would
  flowctl run wf_orders --batch orders.jsonl --key-field orderId --wait"),
    ("wait", "  flowctl wait run_2x8Kq3zVb7LmN1pQ
  flowctl wait run_2x8Kq3zVb7LmN1pQ --timeout 30 --json"),
    ("runs", "  flowctl runs list --workflow wf_order_total --status failed
  flowctl runs show run_2x8Kq3zVb7LmN1pQ
  flowctl runs cancel run_2x8Kq3zVb7LmN1pQ"),
    ("runs list", "  flowctl runs list
  flowctl runs list --workflow wf_orders --trigger batch --all --json
  flowctl runs list --status failed --limit 100"),
    ("runs show", "  flowctl runs show run_2x8Kq3zVb7LmN1pQ"),
    ("runs cancel", "  flowctl runs cancel run_2x8Kq3zVb7LmN1pQ      # exit 2 if it already finished"),
    ("runs redrive", "  flowctl runs redrive run_2x8Kq3zVb7LmN1pQ     # the same run again from its first unfinished step
  flowctl wait run_2x8Kq3zVb7LmN1pQ"),
    ("runs replay", "  flowctl runs replay run_2x8Kq3zVb7LmN1pQ
  flowctl wait $(flowctl runs replay run_2x8Kq3zVb7LmN1pQ)"),
    ("workflows", "  flowctl workflows list
  flowctl workflows show wf_order_total
  flowctl workflows pause wf_nightly_report"),
    ("workflows list", "  flowctl workflows list
  flowctl workflows list --json"),
    ("workflows show", "  flowctl workflows show wf_order_total"),
    ("workflows activate", "  flowctl workflows activate wf_nightly_report"),
    ("workflows pause", "  flowctl workflows pause wf_nightly_report"),
    ("workflows archive", "  flowctl workflows archive wf_old_report"),
    ("connections", "  flowctl connections list
  flowctl connections create --provider smtp --name Mail --config '{\"host\": \"localhost\", \"port\": 25}'"),
    ("connections create", "  flowctl connections create --provider smtp --name Mail --id conn_mail --config @smtp.json --secret-file smtp.pass
  STRIPE_KEY=sk_test_… flowctl connections create --provider stripe --name 'Stripe (test)' --secret-env STRIPE_KEY --default"),
    ("connections list", "  flowctl connections list
  flowctl connections list --json"),
    ("connections delete", "  flowctl connections delete conn_mail
  flowctl connections delete conn_mail --force      # even if active workflows use it"),
    ("keys", "  flowctl keys create --name ci --scopes workflows:execute,runs:read
  flowctl keys list
  flowctl keys revoke key_3KfP0aBc"),
    ("keys create", "  flowctl keys create --name ci --scopes workflows:execute,runs:read
  flowctl keys create --name admin --scopes admin --db /var/lib/flowctl/flowctl.db"),
    ("keys list", "  flowctl keys list
  flowctl keys list --database-url postgres://flowctl@db/flowctl"),
    ("keys revoke", "  flowctl keys revoke key_3KfP0aBc"),
    ("db", "  flowctl db check
  flowctl db backup /backups/flowctl-$(date +%F).db
  flowctl db copy --to postgres://flowctl@db/flowctl"),
    ("db check", "  flowctl db check --db /var/lib/flowctl/flowctl.db"),
    ("db backup", "  flowctl db backup /backups/flowctl-$(date +%F).db"),
    ("db copy", "  flowctl db copy --to postgres://flowctl@db/flowctl --db /var/lib/flowctl/flowctl.db"),
    ("open", "  flowctl open                  # print the link and open it in the browser
  flowctl dashboard --no-browser
  flowctl open --url http://server:3000 --api-key wfk_…"),
    ("webhook", "  flowctl webhook send wf_stripe_invoices"),
    ("webhook send", "  flowctl webhook send wf_stripe_invoices                      # a sample event, signed
  flowctl webhook send wf_stripe_invoices --event invoice.paid --body @evt.json
  flowctl webhook send wf_github_push --event push --body @push.json"),
    ("completion", "  flowctl completion bash > /etc/bash_completion.d/flowctl
  flowctl completion zsh > \"${fpath[1]}/_flowctl\"
  flowctl completion fish > ~/.config/fish/completions/flowctl.fish"),
];

/// The full command tree, with an EXAMPLES section on every command.
pub fn command() -> Command {
    attach(super::Cli::command(), "")
}

fn attach(mut cmd: Command, path: &str) -> Command {
    if let Some((_, ex)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        cmd = cmd.after_help(format!("Examples:\n{ex}"));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| attach(s, &sub_path));
    }
    cmd
}

/// `flowctl completion bash|zsh|fish`: the script on stdout.
pub fn completion(shell: clap_complete::Shell) -> super::CmdResult {
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "flowctl", &mut std::io::stdout());
    Ok(super::Exit::Ok)
}

#[cfg(test)]
mod tests {
    /// Every command, and every subcommand, has an EXAMPLES section.
    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_after_help().is_none() {
                missing.push(format!("flowctl {path}"));
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                walk(sub, p.trim(), missing);
            }
        }
        let mut missing = vec![];
        walk(&super::command(), "", &mut missing);
        assert!(missing.is_empty(), "no examples: {missing:#?}");
    }
}
