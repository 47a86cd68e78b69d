// The screens' root queries: the projects, and the conversations in none.
import { graphql } from "react-relay";

export const appQuery = graphql`
  query AppQuery($count: Int!) {
    projects(first: $count) @connection(key: "App_projects") {
      edges {
        node {
          id
          ...ProjectPanel_project
        }
      }
    }
    conversations(first: $count, filter: { inProject: false })
      @connection(key: "App_conversations", filters: ["filter"]) {
      edges {
        node {
          ...ConversationRow_conversation
        }
      }
    }
  }
`;

export const moveMutation = graphql`
  mutation AppMoveMutation($input: MoveConversationInput!) {
    moveConversation(input: $input) {
      conversation {
        ...ConversationRow_conversation
      }
      previousProject {
        id
        conversationCount
      }
    }
  }
`;
